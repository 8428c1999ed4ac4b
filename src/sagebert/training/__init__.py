"""Fine-tuning: data → model → loop → evaluation every epoch → artifacts, in parts with one job each.

job          sets the parts up and runs them: ``train()``
batches      channels → labelled texts → token ids → each epoch's batches, per process
loop         the epochs of optimizer steps: progress lines, stop and checkpoint requests
evaluation   loss and metrics over the whole evaluation set after every epoch
fingerprint  what identifies the job's result (code, base model, data, hyperparameters)
resume       the training state saved and restored through accelerate, in checkpoints' folders
artifacts    the model directory (complete or absent, with the ONNX export serving runs) and the per-epoch outputs
warm_pool    what a job on a warm pool's instance keeps for the next one (unpacked base model, tokens)
data         channel formats and bad-input errors; cleaning: the optional tweet cleaning
checkpoints  checkpoint folders: manifest, validation, atomic rename, rotation
metrics      evaluation figures; plots: the per-epoch curves
"""

from .job import train
from .loop import TrainingInterrupted, TrainingResult

__all__ = ["TrainingInterrupted", "TrainingResult", "train"]
