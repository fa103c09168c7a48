"""Start moto's S3 server on 0.0.0.0:$MOTO_PORT and create the buckets it serves.

``CORRELI_S3_BUCKET`` (comma-separated for several) names them. Creation is idempotent (a bucket
already there is kept) and each bucket gets a lifecycle rule that aborts multipart uploads left
unfinished for a day (an upload cut off for good leaves invisible parts; this reclaims them).
The process then waits on the server; SIGTERM stops both.
"""

import os
import signal
import sys
import time

import boto3
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

port = int(os.environ.get("MOTO_PORT", "9000"))
buckets = [b.strip() for b in os.environ.get("CORRELI_S3_BUCKET", "correli").split(",") if b]
server = ThreadedMotoServer(ip_address="0.0.0.0", port=port, verbose=False)
server.start()
client = boto3.client(
    "s3",
    endpoint_url=f"http://127.0.0.1:{port}",
    region_name=os.environ.get("CORRELI_S3_REGION", "us-east-1"),
    aws_access_key_id=os.environ.get("CORRELI_S3_ACCESS_KEY_ID", "store"),
    aws_secret_access_key=os.environ.get("CORRELI_S3_SECRET_ACCESS_KEY", "store"),
)
for bucket in buckets:
    try:
        client.head_bucket(Bucket=bucket)
        print(f"store: bucket {bucket} present", flush=True)
    except ClientError:
        client.create_bucket(Bucket=bucket)
        print(f"store: bucket {bucket} created", flush=True)
    client.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "abort-unfinished-multipart",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                }
            ]
        },
    )
with open("/data/tmp/ready", "w") as fh:  # the healthcheck's mark: buckets exist
    fh.write(",".join(buckets))
print(f"store: S3 server on :{port} ready", flush=True)


def stop(*_):
    server.stop()
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
while True:
    time.sleep(3600)
