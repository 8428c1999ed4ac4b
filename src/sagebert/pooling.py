"""A sequence classifier that reads the mean of its encoder's token states instead of the first token.

Sentence-transformers models (all-MiniLM-L6-v2 among them) were trained so that the masked mean
of their last hidden states is the sentence's embedding; their first token was never trained to
summarise the text, which is what a ``...ForSequenceClassification`` head reads. The model here
puts dropout and a linear layer on that mean, over any encoder ``AutoModel`` builds.

Its config and model are registered with transformers' Auto classes under ``MODEL_TYPE``
(``register()``), so a saved model directory loads through ``AutoModelForSequenceClassification``
like any other classifier, and its forward is a plain ``input_ids, attention_mask → logits`` that
torch.onnx and torch.export trace. Padding never reaches the mean: a text's logits do not depend on
how long its batch-mates are.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, PreTrainedConfig, PreTrainedModel
from transformers.configuration_utils import SubConfigSpec
from transformers.modeling_outputs import SequenceClassifierOutput

MODEL_TYPE = "sagebert-mean-pooling"
# A sentence-transformers model directory: its module list, and its pooling module's settings.
SENTENCE_TRANSFORMERS_FILES = ("modules.json", "1_Pooling/config.json")


class MeanPoolingConfig(PreTrainedConfig):
    """The encoder's own config (``encoder``) and the head's dropout."""

    model_type = MODEL_TYPE
    sub_configs_defaults = {"encoder": SubConfigSpec(config_class=AutoConfig, model_type="bert")}

    encoder: PreTrainedConfig | dict | None = None
    classifier_dropout: float | None = None

    @property
    def max_position_embeddings(self) -> int | None:
        """The encoder's limit on tokens per text (what modeling checks max_length against)."""
        return getattr(self.encoder, "max_position_embeddings", None)


class MeanPoolingForSequenceClassification(PreTrainedModel):
    """Encoder → masked mean over the tokens → dropout → linear classifier."""

    config_class = MeanPoolingConfig
    base_model_prefix = "encoder"
    main_input_name = "input_ids"

    def __init__(self, config: MeanPoolingConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.encoder = AutoModel.from_config(config.encoder)
        # A BERT-style pooler reads the first token: unused here, and an unused parameter would
        # stop DistributedDataParallel. Dropping it the same way at training and loading keeps
        # the saved weights and the built model in step.
        if getattr(self.encoder, "pooler", None) is not None:
            self.encoder.pooler = None
        dropout = config.classifier_dropout
        if dropout is None:
            dropout = getattr(config.encoder, "hidden_dropout_prob", 0.1)
        self.dropout = torch.nn.Dropout(dropout)
        self.classifier = torch.nn.Linear(config.encoder.hidden_size, config.num_labels)
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        # Only the head is new; the encoder initialises (or loads) its own weights.
        if module is self.classifier:
            std = getattr(self.config.encoder, "initializer_range", 0.02)
            torch.nn.init.normal_(module.weight, mean=0.0, std=std)
            torch.nn.init.zeros_(module.bias)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        """Logits for each text (and the cross-entropy loss when ``labels`` are given)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**inputs).last_hidden_state
        pooled = masked_mean(hidden, attention_mask)
        logits = self.classifier(self.dropout(pooled))
        loss = None
        if labels is not None:
            loss = torch.nn.functional.cross_entropy(logits.float().view(-1, self.num_labels), labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of each text's token states over its real tokens (padding has mask 0), in float32."""
    mask = attention_mask.unsqueeze(-1).to(torch.float32)
    summed = (hidden.to(torch.float32) * mask).sum(dim=1)
    return summed / mask.sum(dim=1).clamp(min=1.0)


def register() -> None:
    """Make ``MODEL_TYPE`` known to AutoConfig and AutoModelForSequenceClassification (idempotent)."""
    AutoConfig.register(MODEL_TYPE, MeanPoolingConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(MeanPoolingConfig, MeanPoolingForSequenceClassification, exist_ok=True)


def is_sentence_transformers_model(directory: Path) -> bool:
    """Whether ``directory`` holds a sentence-transformers model (its module list or pooling settings)."""
    return any((Path(directory) / name).is_file() for name in SENTENCE_TRANSFORMERS_FILES)


def from_encoder(encoder: PreTrainedModel, *, num_labels: int, id2label: dict, label2id: dict) -> PreTrainedModel:
    """A mean-pooling classifier with the weights of a pretrained ``encoder`` (an AutoModel), its head newly drawn.

    The encoder is rebuilt from its config inside the classifier and given the weights, rather than
    adopted as it is: the classifier sets up the encoder's attention (its implementation, hence how
    the padding mask is applied) from its own config, as it does when a saved model is loaded.
    """
    settings = encoder.config.to_dict()
    settings.pop("_name_or_path", None)  # where the base was unpacked: meaningless in the saved model
    config = MeanPoolingConfig(encoder=settings, num_labels=num_labels, id2label=id2label, label2id=label2id)
    model = MeanPoolingForSequenceClassification(config)
    weights = {k: v for k, v in encoder.state_dict().items() if not k.startswith("pooler.")}
    missing, unexpected = model.encoder.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ValueError(f"the encoder's weights do not fit its config (missing {missing}, unexpected {unexpected})")
    return model
