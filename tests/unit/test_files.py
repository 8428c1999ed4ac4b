"""Files from outside: model archives unpack safely on every Python, and only plain files come out."""

import io
import tarfile

import pytest

from sagebert.errors import ModelSourceError
from sagebert.files import UnsafeFileError, directory_digest, extract_tar
from sagebert.modeling import resolve_base_model, unpack_model_archive


def make_tar(path, members):
    """A .tar.gz of ``members``: (name, bytes) for files, (name, TarInfo-type, linkname) for the rest."""
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            info = tarfile.TarInfo(member[0])
            if len(member) == 2:
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
            else:
                info.type, info.linkname = member[1], member[2]
                tar.addfile(info)
    return path


def test_plain_files_and_folders_are_unpacked_without_the_archive_s_modes(tmp_path):
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in [("./config.json", b"{}"), ("sub/vocab.txt", b"a\nb\n")]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o4777  # setuid, world-writable: not applied
            tar.addfile(info, io.BytesIO(data))
    extract_tar(archive, tmp_path / "out")
    assert (tmp_path / "out" / "config.json").read_bytes() == b"{}"
    assert (tmp_path / "out" / "sub" / "vocab.txt").read_bytes() == b"a\nb\n"
    assert (tmp_path / "out" / "config.json").stat().st_mode & 0o7022 == 0


@pytest.mark.parametrize(
    "member, said",
    [
        (("../escape.txt", b"x"), "a path"),
        (("/etc/cron.d/job", b"x"), "a path"),
        (("a/../../escape.txt", b"x"), "a path"),
        (("passwd", tarfile.SYMTYPE, "/etc/passwd"), "a link"),
        (("hard", tarfile.LNKTYPE, "config.json"), "a link"),
        (("null", tarfile.CHRTYPE, ""), "a device or FIFO"),
        (("pipe", tarfile.FIFOTYPE, ""), "a device or FIFO"),
    ],
)
def test_an_unsafe_member_refuses_the_whole_archive_before_anything_is_written(tmp_path, member, said):
    archive = make_tar(tmp_path / "model.tar.gz", [("config.json", b"{}"), member])
    with pytest.raises(UnsafeFileError) as info:
        extract_tar(archive, tmp_path / "out")
    assert f"model.tar.gz holds {said} that cannot be unpacked safely" in str(info.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.txt").exists()


def test_an_archive_is_unpacked_once_into_a_folder_named_by_its_content(tmp_path):
    (tmp_path / "a").mkdir()
    archive = make_tar(tmp_path / "a" / "model.tar.gz", [("m/config.json", b"{}")])
    copy = tmp_path / "b" / "model.tar.gz"
    copy.parent.mkdir()
    copy.write_bytes(archive.read_bytes())
    first, digest = unpack_model_archive(archive, tmp_path / "scratch")
    second, same = unpack_model_archive(copy, tmp_path / "scratch")  # elsewhere, same bytes
    assert first == second == tmp_path / "scratch" / f"pretrained-{digest[:16]}" / "m" and digest == same
    assert sorted(p.name for p in (tmp_path / "scratch").iterdir()) == [
        f"pretrained-{digest[:16]}",
        f"pretrained-{digest[:16]}.lock",
    ]


def test_a_pretrained_archive_is_named_by_its_file_not_its_temporary_folder(tmp_path):
    channel = tmp_path / "pretrained"
    channel.mkdir()
    make_tar(channel / "model.tar.gz", [("config.json", b"{}")])
    choice = resolve_base_model(channel, "", tmp_path / "scratch")
    assert choice.display_name == "pretrained channel (model.tar.gz)" and len(choice.content_digest) == 64


def test_a_truncated_archive_fails_with_a_reason(tmp_path):
    channel = tmp_path / "pretrained"
    channel.mkdir()
    whole = make_tar(tmp_path / "whole.tar.gz", [("config.json", b"{}" * 50_000)]).read_bytes()
    (channel / "model.tar.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ModelSourceError, match="model.tar.gz in the 'pretrained' channel cannot be unpacked"):
        resolve_base_model(channel, "", tmp_path / "scratch")
    assert not any(p.is_dir() for p in (tmp_path / "scratch").iterdir())


def test_a_link_out_of_the_pretrained_channel_is_refused(tmp_path):
    channel = tmp_path / "pretrained"
    channel.mkdir()
    (channel / "config.json").write_text("{}")
    (channel / "vocab.txt").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeFileError, match="vocab.txt in the 'pretrained' channel is a symbolic link"):
        resolve_base_model(channel, "", tmp_path / "scratch")


def test_the_directory_digest_follows_content_not_place(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name / "sub").mkdir(parents=True)
        (tmp_path / name / "config.json").write_text("{}")
        (tmp_path / name / "sub" / "w.bin").write_bytes(b"\x00\x01")
    assert directory_digest(tmp_path / "a") == directory_digest(tmp_path / "b")
    (tmp_path / "b" / "sub" / "w.bin").write_bytes(b"\x00\x02")
    assert directory_digest(tmp_path / "a") != directory_digest(tmp_path / "b")


def test_a_gzip_bomb_is_refused_by_its_size_before_anything_is_written(tmp_path):
    # 64 MiB of zeros pack to 64 KB; before the cap, a 1 GiB one failed with "No space left".
    archive = make_tar(tmp_path / "model.tar.gz", [("config.json", b"{}"), ("weights.bin", bytes(64 << 20))])
    assert archive.stat().st_size < 1 << 20
    with pytest.raises(UnsafeFileError) as info:
        extract_tar(archive, tmp_path / "out", max_bytes=16 << 20)
    assert "unpacks to more than 0.02 GiB" in str(info.value) and "cap" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_the_default_cap_refuses_an_archive_announcing_more_than_16_gib(tmp_path):
    # Only the header is written: the cap is checked on what the headers announce, never by
    # unpacking (or reading past) the data.
    info = tarfile.TarInfo("weights.bin")
    info.size = (16 << 30) + 1
    archive = tmp_path / "model.tar"
    archive.write_bytes(info.tobuf(tarfile.GNU_FORMAT))
    with pytest.raises(UnsafeFileError) as raised:
        extract_tar(archive, tmp_path / "out")
    assert "more than 16.00 GiB" in str(raised.value) and not (tmp_path / "out").exists()


def test_an_archive_larger_than_the_free_disk_is_refused_with_both_sizes(tmp_path, monkeypatch):
    import shutil

    archive = make_tar(tmp_path / "model.tar.gz", [("config.json", b"{}"), ("weights.bin", bytes(1 << 20))])
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 << 30, 10 << 30, 1 << 19))
    with pytest.raises(UnsafeFileError) as info:
        extract_tar(archive, tmp_path / "out")
    assert "unpacks to 0.00 GiB" in str(info.value) and "VolumeSizeInGB" in info.value.fix
    assert not (tmp_path / "out").exists()
