"""The web app end to end in a real browser (issue 21): Debian's chromium driven by Playwright for
Python (``executable_path``; no browser download), against `talkinghead serve`'s app on loopback
(uvicorn). It uploads a photo, renders, and checks that the page's video element plays the result;
in the live tab, Chromium's fake camera (fed by a real clip) drives the avatar and rendered frames
come back. ``TH_SCREENSHOTS=DIR`` keeps the screenshots and ``TH_WEB_MODEL=default`` serves the
bundled model (how docs/images/web_*.jpg were made, saved as PNG and converted)."""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
pytest.importorskip("fastapi")
playwright_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (.ci/run installs it)", allow_module_level=True)

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
         "--use-fake-device-for-media-stream"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_package: Path, tmp_path_factory):
    import uvicorn

    import talkinghead
    from talkinghead.web.app import create_app

    # TH_WEB_MODEL=default: the bundled model (for the docs' screenshots); the tiny test model otherwise
    package = None if os.environ.get("TH_WEB_MODEL") == "default" else tiny_package
    model = talkinghead.load_model(package, providers="cpu", intra_op_threads=1)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(model, root=tmp_path_factory.mktemp("serve")), host="127.0.0.1",
                                        port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def fake_camera(shared_data: Path, tmp_path_factory) -> Path:
    """A real clip as a y4m file, Chromium's fake-camera input."""
    import av

    from talkinghead.video import iter_frames

    path = tmp_path_factory.mktemp("cam") / "camera.y4m"
    with av.open(str(path), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for frame in iter_frames(shared_data / "driving" / "pcavs_vox_00015.mp4", limit=50):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(width=320, height=240, format="yuv420p")
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def page(fake_camera: Path):
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=FLAGS + [f"--use-file-for-fake-video-capture={fake_camera}"])
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        yield context.new_page()
        browser.close()


def _shot(page, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("TH_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=True)


def test_upload_render_and_play_in_chromium(server: str, page, face_photo: Path, tmp_path: Path) -> None:
    page.goto(server)
    page.set_input_files("#photos", str(face_photo))
    page.click("#make-avatar")
    page.wait_for_selector("#preview:not([hidden])", timeout=60_000)
    page.wait_for_function("document.getElementById('preview').naturalWidth > 0")
    page.fill("#demo-seconds", "2")
    page.click("#render")
    page.wait_for_selector("#result:not([hidden])", timeout=120_000)
    duration = page.evaluate("""() => new Promise((ok, fail) => {
        const v = document.getElementById('result');
        const done = () => ok(v.duration);
        if (v.readyState >= 1) done(); else { v.onloadedmetadata = done; v.onerror = () => fail(v.error); }
    })""")
    assert 1.8 <= duration <= 2.2, duration
    played = page.evaluate("""() => new Promise((ok) => {
        const v = document.getElementById('result');
        v.muted = true;
        v.play().then(() => setTimeout(() => ok([v.currentTime, v.getVideoPlaybackQuality().totalVideoFrames,
                                                v.videoWidth]), 1200));
    })""")
    assert played[0] > 0.3 and played[1] >= 5 and played[2] > 0, played  # it plays: time moves, frames decode
    assert page.get_attribute("#download", "href").startswith("/api/jobs/")
    _shot(page, "web_render.png", tmp_path)


def test_live_tab_renders_the_fake_camera(server: str, page, tmp_path: Path) -> None:
    page.click("#tabs button[data-tab=live]")
    page.click("#live-start")
    page.wait_for_function("document.getElementById('rendered').src.startsWith('blob:')", timeout=60_000)
    page.wait_for_function("/rendered [1-9]/.test(document.getElementById('live-status').textContent)", timeout=60_000)
    time.sleep(1.0)
    _shot(page, "web_live.png", tmp_path)
    page.click("#live-stop")
    status = page.text_content("#live-status")
    assert "rendered" in status and "dropped" in status
