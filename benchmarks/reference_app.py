"""The reference handler behind the same gunicorn + Flask stack as sagebert's server, so that a
benchmark compares handlers, not servers. Run inside the sagebert image:
    gunicorn -k gthread --threads 8 -w 1 -b 0.0.0.0:8080 --preload --chdir /bench reference_app:app
"""

import os

import reference_handler as handler
from flask import Flask, Response, request

model = handler.model_fn(os.environ.get("SAGEBERT_MODEL_DIR", "/opt/ml/model"))
app = Flask("reference")


@app.get("/ping")
def ping():
    return Response("", 200)


@app.post("/invocations")
def invocations():
    data = handler.input_fn(request.get_data(), request.content_type)
    prediction = handler.predict_fn(data, model)
    return Response(handler.output_fn(prediction, "application/json"), 200, mimetype="application/json")
