"""The reference workflow's inference handler, re-implemented for side-by-side benchmarks.

Behaviour kept as the reference had it: the tokenizer is loaded once, every request is padded to
MAX_LEN = 64 tokens whatever its length, every intermediate tensor is printed to stdout, the model
runs in float32 under no_grad, and the answer is the JSON list of logit pairs. Only the model
location differs: the tokenizer comes from the model directory (the Hub is unreachable here).
"""

import json

import torch
from transformers import AutoTokenizer, BertForSequenceClassification

MAX_LEN = 64
tokenizer = None


def model_fn(model_dir):
    global tokenizer
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(model_dir, do_lower_case=True)
    model = BertForSequenceClassification.from_pretrained(model_dir)
    print("================ model loaded ===========================")
    return model.to(device)


def input_fn(request_body, request_content_type):
    if request_content_type != "application/json":
        raise ValueError(f"Unsupported content type: {request_content_type}")
    sentences = json.loads(request_body)
    print("================ input sentences ===============")
    print(sentences)
    if isinstance(sentences, str):
        sentences = [sentences]
    encoded = [tokenizer.encode(s, add_special_tokens=True) for s in sentences]
    print("================ encoded sentences ==============")
    print(encoded)
    padded = torch.zeros(len(encoded), MAX_LEN)
    for row, ids in enumerate(encoded):
        padded[row, : len(ids)] = torch.tensor(ids)
    mask = padded != 0
    print("================= padded input and attention mask ================")
    print(padded, "\n", mask)
    return padded.long(), mask.long()


def predict_fn(input_data, model):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    model.eval()
    input_ids, input_mask = input_data
    input_ids, input_mask = input_ids.to(device), input_mask.to(device)
    print("============== encoded data =================")
    print(input_ids, input_mask)
    with torch.no_grad():
        logits = model(input_ids, attention_mask=input_mask)[0]
        print("=============== inference result =================")
        print(logits)
    return logits


def output_fn(prediction, accept):
    return json.dumps(prediction.tolist())
