"""`talkinghead serve` through FastAPI's test client (issue 21): every endpoint, the limits and bad
inputs, the job queue, the live WebSocket."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

import talkinghead  # noqa: E402
from talkinghead.web.app import create_app  # noqa: E402
from talkinghead.web.store import Limits  # noqa: E402


@pytest.fixture(scope="module")
def model(tiny_package: Path):
    return talkinghead.load_model(tiny_package, providers="cpu", intra_op_threads=1)


@pytest.fixture()
def client(model, tmp_path: Path):
    app = create_app(model, Limits(max_file_bytes=3 * 2**20, max_clip_seconds=5.0, queue_size=1, workers=1,
                                   max_image_pixels=2_000_000), root=tmp_path)
    with TestClient(app) as c:
        yield c


def _photo(face_photo: Path) -> tuple[str, bytes, str]:
    return ("me.jpg", face_photo.read_bytes(), "image/jpeg")


def _avatar(client, face_photo: Path) -> dict:
    r = client.post("/api/avatars", files=[("files", _photo(face_photo))])
    assert r.status_code == 200, r.text
    return r.json()


def _wait(client, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = client.get(f"/api/jobs/{job_id}").json()
        if s["state"] in ("done", "failed"):
            return s
        time.sleep(0.1)
    raise AssertionError("the job did not finish")


def test_page_docs_and_limits_are_served(client) -> None:
    assert "talkinghead" in client.get("/").text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/docs").status_code == 200
    assert "/api/jobs" in client.get("/openapi.json").json()["paths"]
    assert client.get("/api/limits").json()["queue_size"] == 1


def test_avatar_then_demo_job_then_result_then_delete(client, face_photo: Path) -> None:
    a = _avatar(client, face_photo)
    assert a["shots"] == 1 and len(a["faces"]) >= 1 and len(a["id"]) >= 24
    png = client.get(a["preview"])
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    r = client.post("/api/jobs", data={"avatar": a["id"], "demo_seconds": "1"})
    assert r.status_code == 202, r.text
    job = r.json()
    events = client.get(job["events"]).text  # streams until the job ends
    states = [json.loads(line[6:])["state"] for line in events.splitlines() if line.startswith("data: ")]
    assert states[-1] == "done"
    status = client.get(job["status"]).json()
    assert status["frames"] == status["total"] == 25 and status["progress"] == 1.0
    video = client.get(job["result"])
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 204
    assert client.get(job["status"]).status_code == 404
    assert client.delete(f"/api/avatars/{a['id']}").status_code == 204
    assert client.get(a["preview"]).status_code == 404


def test_a_driving_clip_is_animated_with_its_audio(client, face_photo: Path, aac_clip: Path, tmp_path: Path) -> None:
    from talkinghead.video import VideoWriter, iter_frames, probe

    short = tmp_path / "short.mp4"
    with VideoWriter(short, fps=25, audio_from=aac_clip) as w:
        for frame in iter_frames(aac_clip, limit=20):
            w.write(frame)
    a = _avatar(client, face_photo)
    r = client.post("/api/jobs", data={"avatar": a["id"]},
                    files={"driving": ("x.bin", short.read_bytes(), "application/octet-stream")})
    assert r.status_code == 202, r.text
    s = _wait(client, r.json()["id"])
    assert s["state"] == "done", s
    out = tmp_path / "out.mp4"
    out.write_bytes(client.get(r.json()["result"]).content)
    info = probe(out)
    assert info.frame_count == 20 and info.has_audio


@pytest.mark.parametrize("files,status,message", [
    ([("files", ("a.jpg", b"%PDF-1.4 not an image at all", "image/jpeg"))], 415, "not a supported file"),
    ([("files", ("a.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image/png"))], 400, "not a readable image"),
    ([("files", ("big.jpg", b"\xff\xd8\xff" + b"\x00" * (3 * 2**20 + 10), "image/jpeg"))], 413, "MiB limit"),
])
def test_bad_photos_are_refused_with_a_clear_4xx(client, files, status: int, message: str) -> None:
    r = client.post("/api/avatars", files=files)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


def test_no_face_too_many_pixels_and_too_many_files(client, face_photo: Path, tmp_path: Path) -> None:
    from talkinghead.media import encode_image

    blank = encode_image(np.full((120, 160, 3), 128, np.uint8), "png")
    r = client.post("/api/avatars", files=[("files", ("blank.png", blank, "image/png"))])
    assert r.status_code == 400 and "no face" in r.json()["detail"]
    huge = encode_image(np.zeros((1500, 1500, 3), np.uint8), "png")
    r = client.post("/api/avatars", files=[("files", ("huge.png", huge, "image/png"))])
    assert r.status_code == 413 and "megapixel" in r.json()["detail"]
    r = client.post("/api/avatars", files=[("files", _photo(face_photo))] * 33)
    assert r.status_code == 413 and "1 to 32" in r.json()["detail"]
    r = client.post("/api/avatars", files=[("files", _photo(face_photo))], data={"face": "5"})
    assert r.status_code == 400 and "face(s)" in r.json()["detail"]


def test_bad_jobs_unknown_ids_and_a_full_queue(client, face_photo: Path, shared_data: Path) -> None:
    assert client.get("/api/jobs/nope").status_code == 404
    assert client.get("/api/avatars/nope/preview.png").status_code == 404
    assert client.delete("/api/avatars/nope").status_code == 404
    r = client.post("/api/jobs", data={"avatar": "nope"})
    assert r.status_code == 404
    a = _avatar(client, face_photo)
    r = client.post("/api/jobs", data={"avatar": a["id"]},
                    files={"driving": ("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100, "video/mp4")})
    assert r.status_code == 400 and "not a readable video" in r.json()["detail"], r.text
    assert "/" not in r.json()["detail"]  # no server path in what the client sees
    long_clip = shared_data / "driving" / "lp_d18.mp4"  # 7.2 s: over this server's 5 s limit
    r = client.post("/api/jobs", data={"avatar": a["id"]},
                    files={"driving": ("c.mp4", long_clip.read_bytes()[: 3 * 2**20 - 1], "video/mp4")})
    assert r.status_code in (400, 413)
    r = client.post("/api/jobs", data={"avatar": a["id"], "demo_seconds": "600"})
    assert r.status_code == 413
    # One worker and a queue of one: a third job at once is refused with 503, none is lost.
    ids, refused = [], 0
    for _ in range(4):
        r = client.post("/api/jobs", data={"avatar": a["id"], "demo_seconds": "3"})
        if r.status_code == 503:
            refused += 1
            assert "queue is full" in r.json()["detail"]
        else:
            ids.append(r.json()["id"])
    assert refused >= 1 and len(ids) >= 1
    assert all(_wait(client, i)["state"] == "done" for i in ids)
    assert client.get(f"/api/jobs/{ids[0]}/result").status_code == 200


def test_results_wait_for_the_job_and_expired_items_are_removed(model, face_photo: Path, tmp_path: Path) -> None:
    app = create_app(model, Limits(workers=1, queue_size=2, ttl_seconds=0.5), root=tmp_path)
    with TestClient(app) as c:
        a = _avatar(c, face_photo)
        job = c.post("/api/jobs", data={"avatar": a["id"], "demo_seconds": "2"}).json()
        early = c.get(job["result"])
        assert early.status_code in (200, 409)
        _wait(c, job["id"])
        store = app.state.store
        folders = list(store.root.iterdir())
        assert folders
        time.sleep(0.6)
        assert c.get(f"/api/jobs/{job['id']}").status_code == 404  # expired on this request
        assert list(store.root.iterdir()) == []


def test_live_websocket_renders_webcam_frames(client, face_photo: Path, shared_data: Path) -> None:
    from talkinghead.media import encode_image
    from talkinghead.video import iter_frames

    a = _avatar(client, face_photo)
    frames = [encode_image(f, "mjpeg") for f in iter_frames(shared_data / "driving" / "lp_d18.mp4", limit=6)]
    got_frames, statuses = 0, []
    with client.websocket_connect(f"/api/live/{a['id']}") as ws:
        ws.send_bytes(b"not a jpeg")
        assert "JPEG" in json.loads(ws.receive_text())["error"]
        for data in frames:
            ws.send_bytes(data)
            msg = ws.receive()
            if msg.get("bytes"):
                got_frames += 1
                assert msg["bytes"].startswith(b"\xff\xd8")
                statuses.append(json.loads(ws.receive_text()))
    assert got_frames >= 1 and statuses[-1]["rendered"] >= 1
    with pytest.raises(Exception):
        with client.websocket_connect("/api/live/unknown") as ws:
            ws.receive_text()
