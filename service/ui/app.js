// PAIS playground: one panel per task, each calling this server's REST API.
// Plain JavaScript, no dependencies; served by service/playground.py.
"use strict";

(() => {
  const KEY_STORAGE = "pais-api-key";
  // the API's root: the folder this page is served from (/ui -> /), so that the page also
  // works behind a proxy that adds a path prefix
  const BASE = new URL(".", location.href);
  const SVG = "http://www.w3.org/2000/svg";
  // box colours: white text on each is >= 4.5:1 (WCAG AA)
  const PALETTE = ["#b3261e", "#0b57d0", "#146c2e", "#7b2fb8", "#9a3d00", "#00639b", "#8a1d5b", "#4f5b00", "#3f51b5", "#005f5a"];

  const $ = (id) => document.getElementById(id);
  const state = { served: new Set(), models: [], languages: null, pairs: [], voices: [], detectLabels: [], detected: null };

  // ---------------------------------------------------------------- API access

  class ApiError extends Error {
    constructor(status, message, detail) {
      super(message);
      this.status = status;
      this.detail = Array.isArray(detail) ? detail : [];
    }
  }

  function apiKey() {
    try { return sessionStorage.getItem(KEY_STORAGE) || ""; } catch (e) { return ""; }
  }

  /** A request to the API; resolves to parsed JSON (or the Response with raw: true), rejects
   *  with ApiError carrying the API's own {"error", "detail"}. */
  async function api(path, { method = "GET", json, form, raw = false } = {}) {
    const headers = {};
    const key = apiKey();
    if (key) headers.Authorization = "Bearer " + key;
    let body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (form) {
      body = form;
    }
    let response;
    try {
      response = await fetch(new URL(path, BASE), { method, headers, body, cache: "no-store" });
    } catch (error) {
      throw new ApiError(0, "the server did not answer (" + error.message + ")");
    }
    if (!response.ok) {
      const text = await response.text();
      let message = "HTTP " + response.status + (response.statusText ? " " + response.statusText : "");
      let detail = [];
      try {
        const answer = JSON.parse(text);
        if (answer && typeof answer.error === "string") {
          message = answer.error;
          detail = answer.detail || [];
        } else if (answer && answer.detail) {
          message = typeof answer.detail === "string" ? answer.detail : JSON.stringify(answer.detail);
        }
      } catch (e) {
        if (text.trim()) message += ": " + text.trim().slice(0, 500);
      }
      const error = new ApiError(response.status, message, detail);
      if (response.status === 401) askForKey(error);
      throw error;
    }
    return raw ? response : response.json();
  }

  // ---------------------------------------------------------------- helpers

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function svg(tag, attrs = {}) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value);
    }
    return node;
  }

  const fmt = (score) => (score * 100).toFixed(score >= 0.995 || score < 0.1 ? 1 : 0) + "%";
  const seconds = (s) => s.toFixed(s < 10 ? 1 : 0) + " s";
  const size = (bytes) =>
    bytes < 1024 ? bytes + " bytes" : bytes < 1048576 ? Math.round(bytes / 1024) + " KB" : (bytes / 1048576).toFixed(1) + " MB";

  function colourFor(label) {
    let hash = 0;
    for (const ch of label) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
    return PALETTE[hash % PALETTE.length];
  }

  /** Shows an API error as the API states it: its message, then any per-field details
   *  that say more. */
  function showError(box, error) {
    box.replaceChildren();
    const status = error.status ? el("span", { class: "status-code", text: "Error " + error.status + ": " }) : "";
    box.append(el("p", { class: "message" }, status, el("span", { class: "api-error", text: error.message })));
    const extra = (error.detail || []).filter((d) => d && d.message && !error.message.includes(d.message));
    if (extra.length) {
      const list = el("ul");
      for (const d of extra) {
        const where = d.field ? d.field + (d.index !== null && d.index !== undefined ? "[" + d.index + "]" : "") + ": " : "";
        list.append(el("li", { text: where + d.message }));
      }
      box.append(list);
    }
    box.hidden = false;
  }

  function clearError(box) {
    box.hidden = true;
    box.replaceChildren();
  }

  /** Runs `work` with the form's button disabled and the result marked busy; errors land in
   *  the panel's error box. */
  async function busy(form, errorBox, result, work) {
    const button = form.querySelector("button[type=submit]");
    const label = button.textContent;
    button.disabled = true;
    button.textContent = label + "…";
    if (result) result.setAttribute("aria-busy", "true");
    clearError(errorBox);
    try {
      await work();
    } catch (error) {
      if (!(error instanceof ApiError)) console.error(error);
      showError(errorBox, error instanceof ApiError ? error : new ApiError(0, String(error.message || error)));
    } finally {
      button.disabled = false;
      button.textContent = label;
      if (result) result.removeAttribute("aria-busy");
    }
  }

  /** A drop zone around a file input: picking or dropping a file calls onFile(file). */
  function filePicker(prefix, onFile) {
    const input = $(prefix + "-file");
    const zone = input.closest(".drop");
    const name = $(prefix + "-file-name");
    const picked = () => {
      const file = input.files && input.files[0];
      name.textContent = file ? file.name + " (" + size(file.size) + ")" : "";
      if (file) onFile(file);
    };
    input.addEventListener("change", picked);
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        picked();
      }
    });
    return () => input.files && input.files[0];
  }

  function debounce(fn, ms) {
    let timer;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  // ---------------------------------------------------------------- API key

  function askForKey(error) {
    const box = $("key-box");
    const message = $("key-error");
    message.textContent = apiKey() ? error.message : "";
    message.hidden = !apiKey();
    $("key-held").hidden = true;
    if (box.hidden) {
      box.hidden = false;
      $("key-input").focus();
    }
    setStatus("This server needs an API key.", true);
  }

  function setupKey() {
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("key-input").value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY_STORAGE, key);
      $("key-input").value = "";
      $("key-box").hidden = true;
      connect();
    });
    $("key-forget").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORAGE);
      $("key-held").hidden = true;
      connect();
    });
  }

  function setStatus(text, bad = false) {
    const status = $("server-status");
    status.textContent = text;
    status.classList.toggle("bad", bad);
  }

  // ---------------------------------------------------------------- tabs

  const tabs = () => [...document.querySelectorAll('[role="tab"]')].filter((tab) => !tab.hidden);

  function selectTab(tab, focus = false) {
    for (const other of document.querySelectorAll('[role="tab"]')) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !selected;
    }
    if (focus) tab.focus();
    if (location.hash !== "#" + tab.dataset.task) history.replaceState(null, "", "#" + tab.dataset.task);
  }

  function setupTabs() {
    const list = $("tabs");
    list.addEventListener("click", (event) => {
      const tab = event.target.closest('[role="tab"]');
      if (tab) selectTab(tab);
    });
    list.addEventListener("keydown", (event) => {
      const visible = tabs();
      const index = visible.indexOf(document.activeElement);
      if (index < 0) return;
      const next = {
        ArrowRight: visible[(index + 1) % visible.length],
        ArrowLeft: visible[(index - 1 + visible.length) % visible.length],
        Home: visible[0],
        End: visible[visible.length - 1],
      }[event.key];
      if (next) {
        event.preventDefault();
        selectTab(next, true);
      }
    });
    window.addEventListener("hashchange", () => openFromHash());
  }

  function openFromHash() {
    const wanted = location.hash.slice(1);
    const visible = tabs();
    const tab = visible.find((t) => t.dataset.task === wanted) || visible[0];
    if (tab) selectTab(tab);
  }

  // ---------------------------------------------------------------- connecting

  async function connect() {
    setStatus("Connecting to the server…");
    let docs, models;
    try {
      [docs, models] = await Promise.all([api("docs.json"), api("models")]);
    } catch (error) {
      if (error.status !== 401) setStatus("The server did not answer as expected: " + error.message, true);
      return;
    }
    $("key-box").hidden = true;
    $("key-held").hidden = !apiKey();
    state.served = new Set(Object.keys(docs.paths || {}));
    state.models = models.models || [];
    for (const tab of document.querySelectorAll('[role="tab"]')) tab.hidden = !state.served.has(tab.dataset.path);
    const shown = tabs();
    const tasks = [...new Set(state.models.map((m) => m.task))];
    setStatus(
      shown.length
        ? "Connected: " + state.models.length + " models (" + tasks.join(", ") + ")."
        : "Connected, but this server serves none of the tasks this page knows.",
      !shown.length
    );
    fillClassifierModels();
    fillDetectionClasses(docs);
    fillRecommendationHint();
    openFromHash();
    const pending = [];
    if (state.served.has("/translate/languages")) pending.push(loadLanguages());
    if (state.served.has("/voices")) pending.push(loadVoices());
    await Promise.all(pending);
  }

  // ---------------------------------------------------------------- classify

  function fillClassifierModels() {
    const select = $("classify-model");
    const keep = select.value;
    const served = state.models.find((m) => m.task === "classification" && !String(m.source).startsWith("bentoml:"));
    const custom = state.models.filter((m) => m.task === "classification" && String(m.source).startsWith("bentoml:"));
    select.replaceChildren(el("option", { value: "", text: (served ? served.name : "the served classifier") + " (served, default)" }));
    for (const card of custom) {
      const labels = (card.details && card.details.labels) || [];
      select.append(el("option", { value: card.name, text: card.name + " (custom, " + labels.length + " labels)" }));
    }
    select.value = [...select.options].some((o) => o.value === keep) ? keep : "";
    describeClassifier();
  }

  function describeClassifier() {
    const name = $("classify-model").value;
    const info = $("classify-model-info");
    const card = state.models.find((m) => m.task === "classification" && m.name === name && String(m.source).startsWith("bentoml:"));
    if (!card) {
      const served = state.models.find((m) => m.task === "classification" && !String(m.source).startsWith("bentoml:"));
      info.textContent = served ? "Pretrained " + served.name + " (" + served.licence + ")." : "";
      return;
    }
    const labels = (card.details && card.details.labels) || [];
    const evaluation = (card.details && card.details.evaluation) || {};
    const validation = evaluation.validation || {};
    const accuracy = typeof validation.accuracy === "number" ? "; validation accuracy " + fmt(validation.accuracy) : "";
    info.textContent = "Custom classifier, version " + card.version + ": " + labels.join(", ") + accuracy + ".";
  }

  function setupClassify() {
    const form = $("classify-form");
    const current = filePicker("classify", () => run());
    $("classify-model").addEventListener("change", () => {
      describeClassifier();
      if (current()) run();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      run();
    });
    let previewUrl;

    function run() {
      const file = current();
      const result = $("classify-result");
      return busy(form, $("classify-error"), result, async () => {
        if (!file) throw new ApiError(0, "choose an image first");
        const body = new FormData();
        body.append("images", file, file.name);
        body.append("top_k", $("classify-topk").value || "5");
        if ($("classify-model").value) body.append("model", $("classify-model").value);
        let answer;
        try {
          answer = await api("classify", { method: "POST", form: body });
        } catch (error) {
          result.hidden = true;
          throw error;
        }
        const [first] = answer;
        if (previewUrl) URL.revokeObjectURL(previewUrl);
        previewUrl = URL.createObjectURL(file);
        const preview = $("classify-preview");
        preview.src = previewUrl;
        preview.alt = "The image classified: " + file.name;
        $("classify-answered-by").textContent = "by " + first.model;
        const list = $("classify-labels");
        list.replaceChildren();
        for (const p of first.predictions) {
          const bar = el("span");
          bar.style.width = Math.max(0.5, p.score * 100).toFixed(1) + "%";
          list.append(
            el("li", { class: "prediction" },
              el("div", { class: "label" }, el("span", { class: "name", text: p.label }), el("span", { class: "score", text: fmt(p.score) })),
              el("div", { class: "bar", "aria-hidden": "true" }, bar))
          );
        }
        result.hidden = false;
      });
    }
  }

  // ---------------------------------------------------------------- detect

  function fillDetectionClasses(docs) {
    const card = state.models.find((m) => m.task === "detection");
    let labels = card && card.details && card.details.labels;
    if (!labels) {
      try {
        labels = docs.paths["/detect"].post.requestBody.content["multipart/form-data"].schema.properties.classes.items.enum;
      } catch (e) {
        labels = [];
      }
    }
    const sorted = [...labels].sort((a, b) => a.localeCompare(b));
    if (sorted.join() === state.detectLabels.join()) return;
    state.detectLabels = sorted;
    const box = $("detect-classes");
    box.replaceChildren();
    sorted.forEach((label, index) => {
      const id = "detect-class-" + index;
      box.append(el("label", { class: "check", for: id }, el("input", { type: "checkbox", id, value: label }), label));
    });
    summariseClasses();
  }

  function chosenClasses() {
    return [...document.querySelectorAll("#detect-classes input:checked")].map((input) => input.value);
  }

  function summariseClasses() {
    const chosen = chosenClasses();
    $("detect-classes-summary").textContent = chosen.length ? chosen.join(", ") : "all";
  }

  function setupDetect() {
    const form = $("detect-form");
    const current = filePicker("detect", () => run());
    const again = debounce(() => current() && run(), 350);
    const threshold = $("detect-threshold");
    threshold.addEventListener("input", () => ($("detect-threshold-value").textContent = Number(threshold.value).toFixed(2)));
    threshold.addEventListener("change", again);
    $("detect-classes").addEventListener("change", () => {
      summariseClasses();
      again();
    });
    $("detect-classes-clear").addEventListener("click", () => {
      for (const input of document.querySelectorAll("#detect-classes input:checked")) input.checked = false;
      summariseClasses();
      again();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      run();
    });
    let imageUrl;
    let running = null;

    async function run() {
      if (running) await running.catch(() => {});
      const file = current();
      const result = $("detect-result");
      running = busy(form, $("detect-error"), result, async () => {
        if (!file) throw new ApiError(0, "choose an image first");
        const body = new FormData();
        const asked = { threshold: threshold.value, classes: chosenClasses() };
        body.append("images", file, file.name);
        body.append("score_threshold", asked.threshold);
        for (const label of asked.classes) body.append("classes", label);
        let answer;
        try {
          answer = await api("detect", { method: "POST", form: body });
        } catch (error) {
          result.hidden = true;
          throw error;
        }
        const [first] = answer;
        if (imageUrl) URL.revokeObjectURL(imageUrl);
        imageUrl = URL.createObjectURL(file);
        result.hidden = false;
        drawDetections(first, imageUrl, file.name, asked);
      });
      return running;
    }
  }

  function drawDetections(answer, imageUrl, name, asked) {
    const { width, height, detections } = answer;
    const drawing = $("detect-svg");
    drawing.replaceChildren();
    // what was asked for, for whoever reads the page (and its tests)
    drawing.setAttribute("data-threshold", asked.threshold);
    drawing.setAttribute("data-classes", asked.classes.join(","));
    drawing.setAttribute("viewBox", "0 0 " + width + " " + height);
    drawing.setAttribute("data-width", width);
    drawing.setAttribute("data-height", height);
    drawing.append(svg("image", { href: imageUrl, x: 0, y: 0, width, height, preserveAspectRatio: "none" }));
    const stroke = Math.max(2, Math.round(Math.max(width, height) / 250));
    const fontSize = Math.max(12, Math.round(Math.max(width, height) / 45));
    // Labels are placed best first, each where it covers no label placed before it (above
    // its box, inside its top, below it, inside its bottom); the best are drawn last, on top.
    const placed = [];
    const free = (r) => placed.every((p) => r.x + r.w <= p.x || p.x + p.w <= r.x || r.y + r.h <= p.y || p.y + p.h <= r.y);
    const inside = (r) => r.y >= 0 && r.y + r.h <= height;
    const image = drawing.firstChild;
    for (const d of detections) {
      const [x1, y1, x2, y2] = d.box;
      const colour = colourFor(d.label);
      const group = svg("g", { class: "detection", "data-label": d.label });
      group.append(svg("title", { text: d.label + " " + fmt(d.score) }));
      group.append(svg("rect", { class: "box", x: x1, y: y1, width: Math.max(1, x2 - x1), height: Math.max(1, y2 - y1), fill: "none", stroke: colour, "stroke-width": stroke }));
      const text = svg("text", { class: "box-label", fill: "#ffffff", "font-size": fontSize, text: d.label + " " + fmt(d.score) });
      const tag = svg("rect", { class: "tag", fill: colour });
      group.append(tag, text);
      drawing.insertBefore(group, image.nextSibling);
      const textWidth = text.getComputedTextLength() || d.label.length * fontSize * 0.6;
      const h = fontSize * 1.35;
      const w = Math.min(width, textWidth + fontSize * 0.6);
      const x = Math.min(Math.max(0, x1 - stroke / 2), width - w);
      const spots = [y1 - h, y1, y2, y2 - h].map((y) => ({ x, y, w, h })).filter(inside);
      const spot = spots.find(free) || spots[0] || { x, y: Math.max(0, Math.min(y1, height - h)), w, h };
      placed.push(spot);
      tag.setAttribute("x", spot.x);
      tag.setAttribute("y", spot.y);
      tag.setAttribute("width", w);
      tag.setAttribute("height", h);
      // pinned to the measured width: hinting at another zoom must not push it past its tag
      text.setAttribute("textLength", Math.max(1, w - fontSize * 0.6));
      text.setAttribute("lengthAdjust", "spacingAndGlyphs");
      text.setAttribute("x", spot.x + fontSize * 0.3);
      text.setAttribute("y", spot.y + fontSize * 1.05);
    }
    const counts = {};
    for (const d of detections) counts[d.label] = (counts[d.label] || 0) + 1;
    const summary = Object.entries(counts).map(([label, n]) => n + " " + label).join(", ");
    $("detect-caption").textContent =
      name + " (" + width + "×" + height + "): " + (detections.length ? summary : "nothing found at this threshold") + ". Model: " + answer.model + ".";
    const body = $("detect-table").tBodies[0];
    body.replaceChildren();
    for (const d of detections) {
      body.append(el("tr", {}, el("td", { text: d.label }), el("td", { text: fmt(d.score) }), el("td", { text: d.box.map((v) => Math.round(v)).join(", ") })));
    }
  }

  // ---------------------------------------------------------------- video

  function setupVideo() {
    const form = $("video-form");
    let videoUrl;
    const current = filePicker("video", (file) => {
      if (videoUrl) URL.revokeObjectURL(videoUrl);
      videoUrl = URL.createObjectURL(file);
      const preview = $("video-preview");
      preview.hidden = false;
      preview.src = videoUrl;
    });
    $("video-preview").addEventListener("error", () => ($("video-preview").hidden = true));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const file = current();
      const result = $("video-result");
      busy(form, $("video-error"), result, async () => {
        if (!file) throw new ApiError(0, "choose a video first");
        const tasks = [];
        if ($("video-detect").checked) tasks.push("detect");
        if ($("video-classify").checked) tasks.push("classify");
        if (!tasks.length) throw new ApiError(0, "tick objects, scene labels or both");
        const body = new FormData();
        body.append("video", file, file.name);
        body.append("sample_fps", $("video-fps").value || "1");
        body.append("tasks", tasks.join(","));
        let answer;
        try {
          answer = await api("analyze_video", { method: "POST", form: body });
        } catch (error) {
          result.hidden = true;
          throw error;
        }
        result.hidden = false;
        showTimeline(answer, tasks);
      });
    });
  }

  function showTimeline(answer, tasks) {
    const summary = Object.entries(answer.summary || {}).sort((a, b) => a[1].first_s - b[1].first_s || a[0].localeCompare(b[0]));
    const step = 1 / answer.sample_fps;
    const duration = Math.max(answer.duration_s, step);
    $("video-info").textContent =
      answer.width + "×" + answer.height + ", " + seconds(answer.duration_s) + "; " + answer.frames.length + " frames analysed at " +
      answer.sample_fps + " per second by " + Object.values(answer.models).join(" and ") + ".";
    // which labels each analysed frame shows: its detections, else its top class
    // each analysed frame stands for the time until the next one
    const frames = [...answer.frames].sort((a, b) => a.time_s - b.time_s);
    const seen = frames.map((frame, i) => {
      const labels = tasks.includes("detect") ? frame.detections.map((d) => d.label) : frame.labels.slice(0, 1).map((l) => l.label);
      const until = i + 1 < frames.length ? frames[i + 1].time_s : Math.min(duration, frame.time_s + step);
      return { time: frame.time_s, until: Math.max(until, frame.time_s + 0.01), labels: new Set(labels) };
    });

    const chart = $("video-chart");
    chart.replaceChildren();
    const left = 120, right = 70, top = 10, row = 30, axis = 34, width = 720;
    const plot = width - left - right;
    const height = top + Math.max(1, summary.length) * row + axis;
    chart.setAttribute("viewBox", "0 0 " + width + " " + height);
    const x = (t) => left + (Math.min(t, duration) / duration) * plot;
    // axis and ticks
    const tickStep = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600].find((s) => duration / s <= 8) || 1200;
    const axisY = top + Math.max(1, summary.length) * row;
    chart.append(svg("line", { x1: left, y1: axisY, x2: left + plot, y2: axisY, stroke: "#4b5060", "stroke-width": 1 }));
    for (let t = 0; t <= duration + 1e-9; t += tickStep) {
      chart.append(svg("line", { x1: x(t), y1: top, x2: x(t), y2: axisY + 4, stroke: "#d5d8df", "stroke-width": 1 }));
      chart.append(svg("text", { x: x(t), y: axisY + 20, "text-anchor": "middle", "font-size": 13, fill: "#4b5060", text: (Math.round(t * 10) / 10) + " s" }));
    }
    if (!summary.length) {
      chart.append(svg("text", { x: left + plot / 2, y: top + row / 2 + 5, "text-anchor": "middle", "font-size": 14, fill: "#4b5060", text: "nothing found" }));
    }
    summary.forEach(([label, s], index) => {
      const y = top + index * row;
      const colour = colourFor(label);
      const group = svg("g", { class: "track", "data-label": label, "data-first": s.first_s, "data-last": s.last_s });
      group.append(svg("title", { text: label + ": first seen at " + seconds(s.first_s) + ", last at " + seconds(s.last_s) + ", at most " + s.max_count + " at once, in " + s.frames + " frames" }));
      group.append(svg("text", { x: left - 8, y: y + row / 2 + 5, "text-anchor": "end", "font-size": 14, fill: "#1c1b1f", text: label }));
      // the span from first to last sighting, then one block per analysed frame showing it
      const lastUntil = (seen.find((f) => f.time === s.last_s) || { until: s.last_s + step }).until;
      group.append(svg("rect", { class: "span", x: x(s.first_s), y: y + row / 2 - 1, width: Math.max(1, x(lastUntil) - x(s.first_s)), height: 2, fill: colour, opacity: 0.5 }));
      for (const frame of seen) {
        if (!frame.labels.has(label)) continue;
        const blockWidth = Math.max(2, x(frame.until) - x(frame.time) - 3);
        group.append(svg("rect", { class: "seen", x: x(frame.time) + 1, y: y + 6, width: blockWidth, height: row - 12, fill: colour, rx: 2 }));
      }
      group.append(svg("text", { x: left + plot + 8, y: y + row / 2 + 5, "font-size": 13, fill: "#4b5060", text: "×" + s.max_count }));
      chart.append(group);
    });

    const body = $("video-table").tBodies[0];
    body.replaceChildren();
    const preview = $("video-preview");
    for (const [label, s] of summary) {
      const seek = el("button", { type: "button", class: "quiet seek", text: label, "aria-label": "Play " + label + " from " + seconds(s.first_s) });
      seek.addEventListener("click", () => {
        if (!preview.hidden && preview.src) {
          preview.currentTime = s.first_s;
          preview.play().catch(() => {});
        }
      });
      body.append(el("tr", {}, el("td", {}, seek), el("td", { text: seconds(s.first_s) }), el("td", { text: seconds(s.last_s) }), el("td", { text: String(s.max_count) }), el("td", { text: String(s.frames) })));
    }
  }

  // ---------------------------------------------------------------- translate

  async function loadLanguages() {
    try {
      const answer = await api("translate/languages");
      state.languages = answer.languages || {};
      state.pairs = answer.pairs || [];
      state.pivot = Boolean(answer.pivot);
      state.autoDetection = answer.auto_detection;
    } catch (error) {
      showError($("translate-error"), error);
      return;
    }
    const source = $("translate-source");
    const keep = source.value;
    const names = Object.entries(state.languages).sort((a, b) => a[1].localeCompare(b[1]));
    source.replaceChildren(el("option", { value: "auto", text: "Detect language" + (state.autoDetection ? "" : " (not available)") }));
    for (const [code, name] of names) source.append(el("option", { value: code, text: name + " (" + code + ")" }));
    source.value = [...source.options].some((o) => o.value === keep) ? keep : "auto";
    fillTargets();
  }

  function fillTargets() {
    const source = $("translate-source").value;
    const target = $("translate-target");
    const keep = target.value || "es";
    const reachable = new Set(
      state.pairs.filter((p) => source === "auto" || p.source === source).map((p) => p.target)
    );
    target.replaceChildren();
    const names = Object.entries(state.languages || {}).sort((a, b) => a[1].localeCompare(b[1]));
    for (const [code, name] of names) {
      if (code === source || !reachable.has(code)) continue;
      target.append(el("option", { value: code, text: name + " (" + code + ")" }));
    }
    if ([...target.options].some((o) => o.value === keep)) target.value = keep;
  }

  function setupTranslate() {
    const form = $("translate-form");
    $("translate-source").addEventListener("change", fillTargets);
    $("translate-swap").addEventListener("click", () => {
      const source = $("translate-source");
      const target = $("translate-target");
      const from = source.value === "auto" ? state.detected : source.value;
      const to = target.value;
      if (!to) return;
      source.value = to;
      fillTargets();
      if (from && [...target.options].some((o) => o.value === from)) target.value = from;
      const output = $("translate-output").textContent;
      if (output && !$("translate-result").hidden) $("translate-text").value = output;
    });
    $("translate-text").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const result = $("translate-result");
      busy(form, $("translate-error"), result, async () => {
        const text = $("translate-text").value;
        if (!text.trim()) throw new ApiError(0, "type a text to translate");
        let answer;
        try {
          answer = await api("translate", {
            method: "POST",
            json: { texts: [text], source: $("translate-source").value, target: $("translate-target").value },
          });
        } catch (error) {
          result.hidden = true;
          throw error;
        }
        const names = state.languages || {};
        const detected = $("translate-detected");
        if (answer.detection) {
          state.detected = answer.detection.language;
          detected.textContent = answer.detection.language
            ? "Detected: " + (names[answer.detection.language] || answer.detection.language) + " (relative confidence " + fmt(answer.detection.confidence) + ")"
            : "The language could not be detected.";
          detected.hidden = false;
        } else {
          detected.hidden = true;
        }
        const output = $("translate-output");
        output.textContent = answer.translations[0];
        output.setAttribute("lang", answer.target);
        $("translate-model").textContent =
          (names[answer.source] || answer.source) + " → " + (names[answer.target] || answer.target) + " by " + answer.model + ".";
        result.hidden = false;
      });
    });
  }

  // ---------------------------------------------------------------- speech

  async function loadVoices() {
    try {
      state.voices = (await api("voices")).voices || [];
    } catch (error) {
      showError($("speech-error"), error);
      return;
    }
    const select = $("speech-voice");
    select.replaceChildren();
    for (const voice of state.voices) {
      select.append(el("option", { value: voice.id, text: voice.id + " (" + voice.language + ")" + (voice.default ? ", default" : "") }));
    }
    const chosen = state.voices.find((v) => v.default) || state.voices[0];
    if (chosen) select.value = chosen.id;
    limitSpeed();
  }

  function limitSpeed() {
    const voice = state.voices.find((v) => v.id === $("speech-voice").value);
    const speed = $("speech-speed");
    if (voice && Array.isArray(voice.speed)) {
      speed.min = voice.speed[0];
      speed.max = voice.speed[1];
    }
  }

  function wavBlob(chunks, rate) {
    const samples = chunks.reduce((n, c) => n + c.length, 0);
    const buffer = new ArrayBuffer(44 + samples * 2);
    const view = new DataView(buffer);
    const ascii = (offset, text) => [...text].forEach((ch, i) => view.setUint8(offset + i, ch.charCodeAt(0)));
    ascii(0, "RIFF");
    view.setUint32(4, 36 + samples * 2, true);
    ascii(8, "WAVE");
    ascii(12, "fmt ");
    view.setUint32(16, 16, true);
    view.setUint16(20, 1, true);
    view.setUint16(22, 1, true);
    view.setUint32(24, rate, true);
    view.setUint32(28, rate * 2, true);
    view.setUint16(32, 2, true);
    view.setUint16(34, 16, true);
    ascii(36, "data");
    view.setUint32(40, samples * 2, true);
    let offset = 44;
    for (const chunk of chunks) {
      new Int16Array(buffer, offset, chunk.length).set(chunk);
      offset += chunk.length * 2;
    }
    return new Blob([buffer], { type: "audio/wav" });
  }

  /** /synthesize/stream as raw PCM, played through Web Audio as it arrives; the whole
   *  audio then goes into the audio element for replay and download. */
  async function speakStreaming(request, info) {
    const context = new AudioContext();
    let playAt = 0;
    try {
      await context.resume();
      const started = performance.now();
      const response = await api("synthesize/stream", { method: "POST", json: { ...request, format: "pcm" }, raw: true });
      const rate = Number(response.headers.get("X-Sample-Rate")) || 22050;
      const reader = response.body.getReader();
      const chunks = [];
      let carry = null;
      let firstSound = null;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        let bytes = value;
        if (carry) {
          bytes = new Uint8Array(carry.length + value.length);
          bytes.set(carry);
          bytes.set(value, carry.length);
        }
        const even = bytes.length - (bytes.length % 2);
        carry = even < bytes.length ? bytes.slice(even) : null;
        if (!even) continue;
        const samples = new Int16Array(bytes.slice(0, even).buffer);
        chunks.push(samples);
        const buffer = context.createBuffer(1, samples.length, rate);
        const channel = buffer.getChannelData(0);
        for (let i = 0; i < samples.length; i++) channel[i] = samples[i] / 32768;
        const source = context.createBufferSource();
        source.buffer = buffer;
        source.connect(context.destination);
        playAt = Math.max(playAt, context.currentTime + 0.02);
        source.start(playAt);
        playAt += buffer.duration;
        if (firstSound === null) firstSound = performance.now() - started;
      }
      const total = chunks.reduce((n, c) => n + c.length, 0);
      info.textContent =
        "Streamed " + seconds(total / rate) + " of audio from " + response.headers.get("X-Voice") +
        "; the first sound came " + Math.round(firstSound || 0) + " ms after the request.";
      return { blob: wavBlob(chunks, rate), playing: true, seconds: total / rate };
    } finally {
      // close the context once the sound already scheduled has played
      const left = Math.max(0, playAt - context.currentTime);
      setTimeout(() => context.close().catch(() => {}), left * 1000 + 500);
    }
  }

  async function speakWhole(request, info) {
    const response = await api("synthesize", { method: "POST", json: { ...request, format: "wav" }, raw: true });
    const blob = await response.blob();
    const duration = response.headers.get("X-Audio-Duration");
    info.textContent =
      (duration ? seconds(Number(duration)) + " of audio" : "Audio") + " from " + response.headers.get("X-Voice") +
      ", " + response.headers.get("X-Sentences") + " sentence(s).";
    return { blob, playing: false, seconds: duration ? Number(duration) : null };
  }

  function setupSpeech() {
    const form = $("speech-form");
    const speed = $("speech-speed");
    speed.addEventListener("input", () => ($("speech-speed-value").textContent = Number(speed.value).toFixed(1) + "×"));
    $("speech-voice").addEventListener("change", limitSpeed);
    let audioUrl;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const result = $("speech-result");
      const audio = $("speech-audio");
      const info = $("speech-info");
      busy(form, $("speech-error"), result, async () => {
        const request = { text: $("speech-text").value, speed: Number(speed.value) };
        if ($("speech-voice").value) request.voice = $("speech-voice").value;
        const canStream = $("speech-stream").checked && window.AudioContext && window.ReadableStream;
        audio.pause();
        let spoken;
        try {
          spoken = canStream ? await speakStreaming(request, info) : await speakWhole(request, info);
        } catch (error) {
          result.hidden = true;
          throw error;
        }
        if (audioUrl) URL.revokeObjectURL(audioUrl);
        audioUrl = URL.createObjectURL(spoken.blob);
        audio.src = audioUrl;
        audio.dataset.streamed = String(spoken.playing);
        // the length the server said it spoke (X-Audio-Duration, or the streamed samples)
        audio.dataset.spokenSeconds = spoken.seconds === null ? "" : String(spoken.seconds);
        $("speech-download").href = audioUrl;
        result.hidden = false;
        if (!spoken.playing) audio.play().catch(() => {});
      });
    });
  }

  // ---------------------------------------------------------------- recommend

  function fillRecommendationHint() {
    const card = state.models.find((m) => m.task === "recommendation" && m.details && m.details.users);
    if (card) {
      $("recommend-user-hint").textContent =
        "One of the " + card.details.users + " users of " + card.name + "'s training data; an unknown id gets popular items.";
    }
  }

  function itemButton(item, onPick) {
    const button = el("button", { type: "button", "aria-pressed": "false", "data-item": item.item_id },
      el("span", { class: "title", text: item.title || "item " + item.item_id }),
      el("span", { class: "score", text: item.score.toFixed(3) }));
    button.addEventListener("click", () => onPick(item, button));
    return el("li", {}, button);
  }

  function setupRecommend() {
    const form = $("recommend-form");
    const mode = () => document.querySelector('input[name="recommend-mode"]:checked').value;
    for (const radio of document.querySelectorAll('input[name="recommend-mode"]')) {
      radio.addEventListener("change", () => {
        $("recommend-user-field").hidden = mode() !== "user";
        $("recommend-query-field").hidden = mode() !== "query";
      });
    }
    const errorBox = $("recommend-error");

    async function similar(item, button) {
      for (const other of document.querySelectorAll("#panel-recommend .items button")) other.setAttribute("aria-pressed", String(other === button));
      clearError(errorBox);
      const result = $("similar-result");
      result.setAttribute("aria-busy", "true");
      try {
        const answer = await api("similar_items", { method: "POST", json: { item_id: item.item_id, k: Number($("recommend-k").value) || 10 } });
        $("similar-heading").textContent = "Similar to " + (item.title || "item " + item.item_id);
        $("similar-info").textContent = "By " + answer.model + " (" + answer.strategy + ").";
        const list = $("similar-list");
        list.replaceChildren(...answer.items.map((i) => itemButton(i, similar)));
        result.hidden = false;
      } catch (error) {
        showError(errorBox, error);
      } finally {
        result.removeAttribute("aria-busy");
      }
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const result = $("recommend-result");
      busy(form, errorBox, result, async () => {
        const request = { k: Number($("recommend-k").value) || 10 };
        let heading;
        if (mode() === "user") {
          request.user_id = $("recommend-user").value.trim();
          heading = "For user " + request.user_id;
        } else {
          request.query = $("recommend-query").value;
          heading = "For “" + request.query + "”";
        }
        const answer = await api("recommend", { method: "POST", json: request });
        $("recommend-heading").textContent = heading;
        const why = { personal: "from the user's history", popular: "popular items: the user is unknown", content: "matched on the titles' text" };
        $("recommend-info").textContent = "By " + answer.model + ", " + (why[answer.strategy] || answer.strategy) + ".";
        $("recommend-list").replaceChildren(...answer.items.map((i) => itemButton(i, similar)));
        $("similar-result").hidden = true;
        result.hidden = false;
      });
    });
  }

  // ---------------------------------------------------------------- start

  setupKey();
  setupTabs();
  setupClassify();
  setupDetect();
  setupVideo();
  setupTranslate();
  setupSpeech();
  setupRecommend();
  openFromHash();
  connect();
})();
