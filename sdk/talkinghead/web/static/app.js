// The talkinghead page: plain JavaScript against the HTTP API (see /docs).
"use strict";
const $ = (id) => document.getElementById(id);
let avatarId = null;

function say(el, text, isError = false) {
  el.textContent = text;
  el.className = isError ? "error" : "";
}

async function apiError(response) {
  try { return (await response.json()).detail; } catch (e) { return response.statusText; }
}

$("make-avatar").onclick = async () => {
  const files = $("photos").files;
  if (!files.length) return say($("avatar-status"), "choose one or more photos first", true);
  const form = new FormData();
  for (const f of files) form.append("files", f);
  form.append("face", $("face").value);
  say($("avatar-status"), "finding the face ...");
  const r = await fetch("/api/avatars", { method: "POST", body: form });
  if (!r.ok) return say($("avatar-status"), await apiError(r), true);
  const a = await r.json();
  avatarId = a.id;
  say($("avatar-status"), `${a.shots} photo(s); ${a.faces.length} face(s) in the first, using face ${a.face}`);
  $("preview").src = a.preview;
  $("preview").hidden = false;
  $("tabs").hidden = false;
  showTab("render");
};

function showTab(name) {
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  $("tab-render").hidden = name !== "render";
  $("tab-live").hidden = name !== "live";
}
for (const b of document.querySelectorAll("#tabs button")) b.onclick = () => showTab(b.dataset.tab);

$("render").onclick = async () => {
  const form = new FormData();
  form.append("avatar", avatarId);
  const useClip = document.querySelector("input[name=perf]:checked").value === "clip";
  if (useClip) {
    if (!$("clip").files.length) return say($("job-status"), "choose a clip first", true);
    form.append("driving", $("clip").files[0]);
  } else {
    form.append("demo_seconds", $("demo-seconds").value);
  }
  $("result").hidden = true;
  $("download").hidden = true;
  say($("job-status"), "uploading ...");
  const r = await fetch("/api/jobs", { method: "POST", body: form });
  if (!r.ok) return say($("job-status"), await apiError(r), true);
  const job = await r.json();
  $("progress").hidden = false;
  const events = new EventSource(job.events);
  events.onmessage = (e) => {
    const s = JSON.parse(e.data);
    $("progress").value = s.progress;
    say($("job-status"), `${s.state}: ${s.frames} / ${s.total || "?"} frames`, s.state === "failed");
    if (s.state === "failed") { say($("job-status"), s.error, true); events.close(); }
    if (s.state === "done") {
      events.close();
      $("result").src = job.result;
      $("result").hidden = false;
      $("download").href = job.result;
      $("download").hidden = false;
    }
  };
};

let live = null;
$("live-start").onclick = async () => {
  const camera = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  $("camera").srcObject = camera;
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/live/${avatarId}`);
  ws.binaryType = "blob";
  const canvas = document.createElement("canvas");
  let inFlight = 0, stopped = false;
  ws.onmessage = (e) => {
    if (typeof e.data === "string") {
      const s = JSON.parse(e.data);
      if (s.error) return say($("live-status"), s.error, true);
      inFlight = 0;
      say($("live-status"), `rendered ${s.rendered}, dropped ${s.dropped}, latency ${Math.round(s.latency_ms)} ms`);
    } else {
      const url = URL.createObjectURL(e.data);
      const img = $("rendered");
      const old = img.src;
      img.src = url;
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    }
  };
  const send = () => {
    if (stopped || ws.readyState !== WebSocket.OPEN) return;
    const v = $("camera");
    if (v.videoWidth && inFlight < 2) {
      canvas.width = v.videoWidth; canvas.height = v.videoHeight;
      canvas.getContext("2d").drawImage(v, 0, 0);
      canvas.toBlob((b) => { if (b && ws.readyState === WebSocket.OPEN) { ws.send(b); inFlight++; } }, "image/jpeg", 0.85);
    }
    setTimeout(send, 40);
  };
  ws.onopen = send;
  ws.onclose = (e) => { if (e.reason) say($("live-status"), e.reason, true); };
  live = { ws, camera, stop: () => { stopped = true; ws.close(); camera.getTracks().forEach((t) => t.stop()); } };
  $("live-start").disabled = true;
  $("live-stop").disabled = false;
};
$("live-stop").onclick = () => {
  if (live) live.stop();
  live = null;
  $("live-start").disabled = false;
  $("live-stop").disabled = true;
};
