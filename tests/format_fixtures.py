"""Helpers of the open-format and remote-input tests: a local S3 (moto) server."""

from __future__ import annotations

import contextlib

import pytest



@contextlib.contextmanager
def moto_s3(monkeypatch, bucket: str = "gallery"):
    """A moto S3 server on 127.0.0.1 with one bucket, set as the endpoint (AWS_ENDPOINT_URL) and no credentials;
    yields a boto3 client. Objects put with ACL public-read are read anonymously, as the Cell Painting Gallery."""
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    srv = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    try:
        host, port = srv.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                          region_name="us-east-1")
        s3.create_bucket(Bucket=bucket)
        yield s3
    finally:
        srv.stop()
