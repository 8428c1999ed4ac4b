"""`sagebert upload-data LOCAL_DIR S3_URI`: the data folder (training/, testing/) to S3."""

from __future__ import annotations

from pathlib import Path

from ..aws import storage
from ..aws.build.common import S3Location
from ..aws.clients import AwsClients
from .output import OK, say, warn


def register(sub) -> None:
    p = sub.add_parser("upload-data", help="upload a data folder (training/, testing/) to S3")
    p.add_argument("directory", metavar="LOCAL_DIR")
    p.add_argument("destination", metavar="S3_URI")
    p.set_defaults(handler=run)


def run(args, clients: AwsClients) -> int:
    destination = S3Location.parse(args.destination, "destination").as_prefix()
    total, count = 0, 0
    for done in storage.upload_tree(clients, Path(args.directory), destination):
        say(f"uploaded {done.path} -> {done.uri} ({done.size:,} bytes)")
        total, count = total + done.size, count + 1
    say(f"Uploaded {count} file(s), {total:,} bytes, to {destination.uri}")
    present = storage.data_channels_present(clients, destination)
    if "training" not in present:
        warn(
            f"nothing under {destination.child('training', '').uri}: `sagebert train --data` expects "
            "the folder that holds training/ (and testing/)"
        )
    else:
        say(f"Channels: {', '.join(sorted(present))}. Next: sagebert train --data {destination.uri} ...")
    return OK
