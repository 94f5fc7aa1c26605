"""The image an image-to-image request starts from, for a provider that wants it uploaded (OpenAI's edits):
fetched from its URL by the gateway, within bounds, never from addresses nobody should make it fetch; and a
caller's key never sent to a provider it is not for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from relaygate import Gateway
from relaygate.settings import ProjectSettings, ProviderSettings, Settings, VirtualModelSettings
from tests.fakes.images_server import FakeImages
from tests.servers import serve_in_thread

pytestmark = pytest.mark.anyio

KEY = "configured-images-key-0123456789"
CALLER = "callers-own-images-key-0123456789"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR-a-remote-image"


async def pictures(scope: Scope, receive: Receive, send: Send) -> None:
    """A web server holding one PNG (``/cat.png``) and one page (``/page``)."""
    if scope["type"] != "http":
        return
    found = {"/cat.png": (b"image/png", PNG), "/page": (b"text/html", b"<html>no image</html>")}.get(scope["path"])
    status, (kind, body) = (200, found) if found is not None else (404, (b"text/plain", b"missing"))
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", kind)]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[FakeImages, str, str]]:
    fake = FakeImages("openai", keys={KEY, CALLER})
    with serve_in_thread(fake) as images_url, serve_in_thread(pictures) as pictures_url:
        yield fake, images_url, pictures_url


@pytest.fixture
async def client(upstreams: tuple[FakeImages, str, str]) -> AsyncIterator[httpx.AsyncClient]:
    _, images_url, _ = upstreams
    settings = Settings(
        providers={
            "openai": ProviderSettings(kind="openai", base_url=images_url + "/v1", api_key=KEY),
            "other": ProviderSettings(kind="openai", base_url=images_url + "/v1", api_key=KEY),
        },
        models={"both": VirtualModelSettings(strategy="fallback", targets=["openai/gpt-image-1", "other/gpt-image-1"])},
        projects=[ProjectSettings(id="default", byok=True)],
        database=None,
    )
    gateway = Gateway(settings)
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=60) as http:
            yield http


async def edit(client: httpx.AsyncClient, image_url: str, **headers: str) -> httpx.Response:
    body: dict[str, Any] = {"model": "openai:gpt-image-1", "prompt": "Make it blue", "image_url": image_url}
    return await client.post("/v1/images", json=body, headers=headers)


async def test_an_image_url_is_fetched_and_uploaded_to_the_edits_endpoint(
    client: httpx.AsyncClient, upstreams: tuple[FakeImages, str, str]
) -> None:
    fake, _, pictures_url = upstreams
    response = await edit(client, pictures_url + "/cat.png")
    assert response.status_code == 200, response.text
    assert fake.uploads[-1] == PNG
    seen = fake.last("/images/edits")
    assert seen.body["file:image"] == "image/png" and seen.headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("path", "said"),
    [("/page", "must be a PNG, JPEG, WEBP or GIF image"), ("/missing.png", "answered with status 404")],
)
async def test_an_image_url_that_is_no_image_is_a_400(
    client: httpx.AsyncClient, upstreams: tuple[FakeImages, str, str], path: str, said: str
) -> None:
    fake, _, pictures_url = upstreams
    before = len(fake.requests)
    response = await edit(client, pictures_url + path)
    error = response.json()["error"]
    assert response.status_code == 400 and error["param"] == "image_url" and said in error["message"]
    assert len(fake.requests) == before, "nothing went to the provider"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam.png",
        "http://metadata.google.internal/x.png",
        "http://[fe80::1]/a.png",
    ],
)
async def test_addresses_nobody_should_make_the_gateway_fetch_are_refused(client: httpx.AsyncClient, url: str) -> None:
    response = await edit(client, url)
    assert response.status_code == 400 and response.json()["error"]["param"] == "image_url"


async def test_a_data_url_that_is_no_base64_is_a_400(client: httpx.AsyncClient) -> None:
    response = await edit(client, "data:image/png;base64,***not base64***")
    assert response.status_code == 400 and response.json()["error"]["param"] == "image_url"


async def test_a_callers_key_is_never_sent_to_a_second_provider(
    client: httpx.AsyncClient, upstreams: tuple[FakeImages, str, str]
) -> None:
    fake, _, _ = upstreams
    before = len(fake.requests)
    response = await client.post("/v1/images", json={"model": "both", "prompt": "x"}, headers={"LB-LLM-Key": CALLER})
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == "caller_key_ambiguous" and error["param"] == "model"
    assert "openai, other" in error["message"]
    assert len(fake.requests) == before
    own = await client.post(
        "/v1/images", json={"model": "openai:gpt-image-1", "prompt": "x"}, headers={"LB-LLM-Key": CALLER}
    )
    assert own.status_code == 200 and fake.last().headers["authorization"] == f"Bearer {CALLER}"
