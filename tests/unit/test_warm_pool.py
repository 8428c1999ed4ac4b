"""Reuse on a warm pool's instance (sagebert.training.warm_pool): a temporary folder stands in for
the persistent cache directory SageMaker gives warm pools."""

import tarfile

import pytest

from sagebert import files
from sagebert.training import batches, warm_pool
from sagebert.training.data import LabelledTexts
from support import TRAIN_CSV, read_rows

ROWS = read_rows(TRAIN_CSV, 64)
TEXTS = LabelledTexts([r["sentence"] for r in ROWS], [int(r["label"]) for r in ROWS], "train.csv")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    directory = tmp_path / "warmpoolcache"
    directory.mkdir()
    monkeypatch.setenv(warm_pool.CACHE_DIR_ENV, str(directory))
    return directory


class CountingTokenizer:
    """The tiny BERT's tokenizer, counting the texts it is asked to tokenize."""

    def __init__(self, tokenizer):
        self.tokenizer, self.texts = tokenizer, 0

    def __call__(self, texts, **kwargs):
        self.texts += len(texts)
        return self.tokenizer(texts, **kwargs)


@pytest.fixture
def tokenizer(tiny_bert):
    from transformers import AutoTokenizer

    return CountingTokenizer(AutoTokenizer.from_pretrained(tiny_bert))


def test_a_second_job_reuses_the_tokenized_data(cache, tokenizer, caplog):
    first = batches.tokenize_dataset(tokenizer, TEXTS, 32, report=True, base_model_digest="base-a")
    made = tokenizer.texts
    caplog.set_level("INFO")
    second = batches.tokenize_dataset(tokenizer, TEXTS, 32, report=True, base_model_digest="base-a")

    assert made > 0 and tokenizer.texts == made  # nothing tokenized the second time
    assert second.examples == first.examples
    assert any("warm pool cache: reusing" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "change",
    ["a changed dataset", "another base model", "another max_length"],
)
def test_anything_that_changes_the_tokens_misses_the_cache(cache, tokenizer, change):
    batches.tokenize_dataset(tokenizer, TEXTS, 32, report=False, base_model_digest="base-a")
    made = tokenizer.texts
    texts, digest, max_length = TEXTS, "base-a", 32
    if change == "a changed dataset":
        texts = LabelledTexts(TEXTS.texts[:-1] + [TEXTS.texts[-1] + "!"], TEXTS.labels, TEXTS.source)
    elif change == "another base model":
        digest = "base-b"
    else:
        max_length = 16
    again = batches.tokenize_dataset(tokenizer, texts, max_length, report=False, base_model_digest=digest)

    assert tokenizer.texts > made
    assert again.examples == batches.tokenize_dataset(tokenizer.tokenizer, texts, max_length, report=False).examples
    assert len(list((cache / "tokenized").glob("*.json"))) == 2


def test_a_damaged_entry_is_tokenized_again(cache, tokenizer):
    first = batches.tokenize_dataset(tokenizer, TEXTS, 32, report=False, base_model_digest="base-a")
    (entry,) = (cache / "tokenized").glob("*.json")
    entry.write_text('{"encoded": ')
    again = batches.tokenize_dataset(tokenizer, TEXTS, 32, report=False, base_model_digest="base-a")

    assert again.examples == first.examples and tokenizer.texts > len(TEXTS)


def test_outside_a_warm_pool_nothing_is_kept(tmp_path, monkeypatch, tokenizer):
    monkeypatch.setenv(warm_pool.CACHE_DIR_ENV, str(tmp_path / "absent"))
    assert warm_pool.cache_dir() is None
    batches.tokenize_dataset(tokenizer, TEXTS, 32, report=False, base_model_digest="base-a")
    batches.tokenize_dataset(tokenizer, TEXTS, 32, report=False, base_model_digest="base-a")
    assert tokenizer.texts == 2 * len(TEXTS) and list(tmp_path.iterdir()) == []


def test_a_second_job_on_the_instance_reuses_the_unpacked_archive_and_the_tokens(
    cache, tiny_bert, tmp_path, monkeypatch, caplog
):
    """Two training jobs, as on one warm pool's instance: the second unpacks and tokenizes nothing."""
    from sagebert.environment import TrainingEnvironment
    from sagebert.hyperparameters import load
    from sagebert.training import train
    from support import make_opt_ml

    archived = tmp_path / "archived"
    archived.mkdir()
    with tarfile.open(archived / "model.tar.gz", "w:gz") as archive:
        for path in sorted(tiny_bert.iterdir()):
            archive.add(path, arcname=path.name)
    hyperparameters = {"epochs": 1, "train_batch_size": 16, "learning_rate": 1e-3, "max_length": 32}

    def job(number: int) -> None:
        base = make_opt_ml(
            tmp_path / f"job{number}", train_rows=48, test_rows=16, pretrained=archived, hyperparameters=hyperparameters
        )
        monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(base))
        env = TrainingEnvironment.read(base)
        train(load(env.hyperparameters), env)

    job(1)
    assert len([p for p in cache.glob("pretrained-*") if p.is_dir()]) == 1  # the archive, unpacked there
    assert len(list((cache / "tokenized").glob("*.json"))) == 2  # training and evaluation data

    monkeypatch.setattr(files, "extract_tar", lambda *args: pytest.fail("unpacked again"))
    caplog.set_level("INFO")
    job(2)
    assert sum("warm pool cache: reusing" in r.getMessage() for r in caplog.records) == 2
