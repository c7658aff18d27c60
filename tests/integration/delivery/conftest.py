"""moto in server mode on 127.0.0.1, and our stand-in in front of it (session-wide)."""

from __future__ import annotations

import json
import types
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from tests.support.aws_proxy import AwsProxy, aws_proxy

REGION = "us-east-1"
SENDER = "no-reply@example.com"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def _proxy(moto_url: str) -> Iterator[AwsProxy]:
    with aws_proxy(moto_url) as proxy:
        yield proxy


@pytest.fixture
def proxy(_proxy: AwsProxy, moto_url: str) -> AwsProxy:
    """The stand-in, with moto and itself emptied for this test."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))
    _proxy.reset()
    return _proxy


def moto_data(moto_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{moto_url}/moto-api/data.json") as response:
        return dict(json.load(response))


@pytest.fixture
def aws_client(proxy: AwsProxy) -> Callable[..., Any]:
    """boto3 clients pointed at the stand-in (which forwards to moto)."""

    def make(service: str, max_attempts: int = 1) -> Any:
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        config = Config(retries={"total_max_attempts": max_attempts, "mode": "standard"})
        return session.client(service, endpoint_url=proxy.url, config=config)  # type: ignore[call-overload]

    return make


@pytest.fixture
def botocore_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry back-off, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=slept.append))
    return slept
