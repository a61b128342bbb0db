// The result page: the waveform (wavesurfer.js, from the stored peaks; plays an output and
// zooms) and the short-term loudness curve (an SVG drawn here).
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";

  // -- waveform -----------------------------------------------------------------------------

  // wavesurfer puts its layout in a <style> inside its shadow root, which the pages' CSP
  // (style-src 'self') refuses; the same rules, adopted as a constructed stylesheet, are not
  // inline markup and apply.
  const WAVE_CSS = `
    :host { user-select: none; min-width: 1px; }
    :host audio { display: block; width: 100%; }
    :host .scroll { overflow-x: auto; overflow-y: hidden; width: 100%; position: relative; }
    :host .noScrollbar { scrollbar-color: transparent; scrollbar-width: none; }
    :host .noScrollbar::-webkit-scrollbar { display: none; -webkit-appearance: none; }
    :host .wrapper { position: relative; overflow: visible; z-index: 2; }
    :host .canvases { min-height: HEIGHTpx; pointer-events: none; }
    :host .canvases > div { position: relative; }
    :host canvas { display: block; position: absolute; top: 0; image-rendering: pixelated; }
    :host .progress { pointer-events: none; position: absolute; z-index: 2; top: 0; left: 0;
      width: 0; height: 100%; overflow: hidden; }
    :host .progress > div { position: relative; }
    :host .cursor { pointer-events: none; position: absolute; z-index: 5; top: 0; left: 0;
      height: 100%; border-radius: 2px; }`;

  function adoptStyles(wavesurfer, height) {
    const root = wavesurfer.getWrapper().getRootNode();
    if (!(root instanceof ShadowRoot) || !("adoptedStyleSheets" in root)) return;
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(WAVE_CSS.replace("HEIGHT", String(height)));
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
  }

  // BBC audiowaveform JSON (v2): per pixel a min and a max (per channel, interleaved), as
  // integers of `bits` bits. WaveSurfer takes peaks in −1…1, one array per channel: the pairs
  // in order (min, max, min, max…) draw the same envelope.
  function peaksOf(waveform) {
    const scale = waveform.bits === 16 ? 32768 : 128;
    const channels = waveform.channels || 1;
    const data = waveform.data || [];
    const length = waveform.length || Math.floor(data.length / (2 * channels));
    const peaks = new Float32Array(2 * length);
    for (let i = 0; i < length; i += 1) {
      let low = 0;
      let high = 0;
      for (let c = 0; c < channels; c += 1) {
        low = Math.min(low, data[2 * (i * channels + c)] / scale);
        high = Math.max(high, data[2 * (i * channels + c) + 1] / scale);
      }
      peaks[2 * i] = low;
      peaks[2 * i + 1] = high;
    }
    return { peaks, duration: (length * waveform.samples_per_pixel) / waveform.sample_rate };
  }

  function clock(seconds) {
    const s = Math.max(0, seconds || 0);
    return `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, "0")}`;
  }

  async function drawWaveform() {
    const box = document.getElementById("waveform");
    const status = document.getElementById("wave-status");
    const play = document.getElementById("play");
    const zoomIn = document.getElementById("zoom-in");
    const zoomOut = document.getElementById("zoom-out");
    const time = document.getElementById("wave-time");
    const fail = (text) => {
      box.dataset.state = "failed";
      status.textContent = text;
      status.classList.add("error");
    };
    if (typeof WaveSurfer === "undefined") return fail("The waveform player did not load.");
    let answer;
    try {
      answer = await PC.api("GET", box.dataset.peaksUrl);
    } catch (error) {
      return fail("Could not fetch the waveform (network error).");
    }
    if (answer.status !== 200 || !answer.body) {
      return fail(`Could not fetch the waveform: ${PC.errorText(answer)}`);
    }
    const { peaks, duration: drawn } = peaksOf(answer.body);
    const duration = Number(box.dataset.duration) || drawn;
    const height = 128;
    // The player's own element, in the page (hidden: the waveform is its face). It asks for
    // the output's first bytes only; playing or seeking asks for the bytes from there on (the
    // API answers byte ranges), so a long output starts and seeks at once.
    const media = document.createElement("audio");
    media.preload = "metadata";
    media.id = "player";
    media.hidden = true;
    box.after(media);
    const wavesurfer = WaveSurfer.create({
      media,
      container: box,
      height,
      waveColor: "#6d8fc9",
      progressColor: "#0b57d0",
      cursorColor: "#1b1f24",
      cursorWidth: 2,
      normalize: true,
      url: box.dataset.audioUrl || undefined,
      peaks: [peaks],
      duration,
      mediaControls: false,
      dragToSeek: true,
    });
    adoptStyles(wavesurfer, height);
    // Zoom: pixels per second, from "the whole track fits" up to 64 times that.
    const fit = () => Math.max(1, box.clientWidth / Math.max(duration, 0.001));
    let factor = 1;
    const zoom = (by) => {
      factor = Math.min(64, Math.max(1, factor * by));
      wavesurfer.zoom(fit() * factor);
      box.dataset.zoom = String(factor);
      zoomOut.disabled = factor <= 1;
      zoomIn.disabled = factor >= 64;
      status.textContent = factor > 1 ? `Zoomed in ×${factor}.` : "Zoomed out to the whole track.";
    };
    const showTime = () => {
      time.textContent = `${clock(wavesurfer.getCurrentTime())} / ${clock(wavesurfer.getDuration() || duration)}`;
    };
    wavesurfer.on("ready", () => {
      box.dataset.state = "ready";
      status.textContent = box.dataset.audioUrl ? "Waveform ready." : "Waveform ready (no output to play).";
      play.disabled = !box.dataset.audioUrl;
      zoomIn.disabled = false;
      showTime();
    });
    wavesurfer.on("play", () => {
      play.textContent = "Pause";
    });
    wavesurfer.on("pause", () => {
      play.textContent = "Play";
    });
    wavesurfer.on("timeupdate", showTime);
    wavesurfer.on("error", (error) => {
      status.textContent = `The audio could not be played: ${error && error.message ? error.message : error}`;
    });
    play.addEventListener("click", () => wavesurfer.playPause());
    zoomIn.addEventListener("click", () => zoom(2));
    zoomOut.addEventListener("click", () => zoom(0.5));
  }

  // -- loudness curve -----------------------------------------------------------------------

  function el(name, attributes, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const minus = (value) => String(value).replace("-", "\u2212");

  function drawLoudness() {
    const box = document.getElementById("loudness-chart");
    const { values, hop_s: hop, targets } = JSON.parse(document.getElementById("loudness-data").textContent);
    const levels = values.filter((v) => v !== null);
    if (!levels.length) {
      box.textContent = "No loudness above the gate (−70 LUFS): the track is silent.";
      return;
    }
    // Drawn at the box's own width, so its text stays legible on a phone.
    const width = Math.max(300, Math.round(box.clientWidth || 800));
    const height = width < 500 ? 220 : 260;
    const pad = { left: 44, right: 72, top: 14, bottom: 30 };
    const marks = targets.map(([lufs]) => lufs);
    const top = Math.ceil((Math.max(...levels, ...marks) + 2) / 6) * 6;
    const bottom = Math.floor((Math.min(...levels, ...marks) - 2) / 6) * 6;
    const seconds = values.length * hop;
    const x = (t) => pad.left + (t / seconds) * (width - pad.left - pad.right);
    const y = (lufs) => pad.top + ((top - lufs) / (top - bottom)) * (height - pad.top - pad.bottom);
    const summary = `Short-term loudness over ${seconds.toFixed(0)} seconds, from ` +
      `${Math.min(...levels).toFixed(1)} to ${Math.max(...levels).toFixed(1)} LUFS.`;
    const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": summary,
      class: "loudness-svg", "data-testid": "loudness-svg" });
    svg.append(el("title", {}, summary));
    // Grid and axes: a line every 6 LU; time ticks at round seconds.
    for (let level = bottom; level <= top; level += 6) {
      svg.append(el("line", { x1: pad.left, x2: width - pad.right, y1: y(level), y2: y(level), class: "grid-line" }));
      svg.append(el("text", { x: pad.left - 6, y: y(level) + 4, class: "axis-label", "text-anchor": "end" }, minus(level)));
    }
    const most = Math.max(2, Math.floor((width - pad.left - pad.right) / 56)); // labels that fit
    const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600]
      .find((s) => seconds / s <= most) || 7200;
    for (let t = 0; t <= seconds + 1e-9; t += step) {
      svg.append(el("text", { x: x(t), y: height - 8, class: "axis-label", "text-anchor": "middle" }, clock(t).replace(/\.0$/, "")));
    }
    // The targets, labelled at the right.
    for (const [lufs, use] of targets) {
      const line = el("line", { x1: pad.left, x2: width - pad.right, y1: y(lufs), y2: y(lufs),
        class: "target-line", "data-lufs": lufs });
      line.append(el("title", {}, `${minus(lufs)} LUFS: ${use}`));
      svg.append(line);
      svg.append(el("text", { x: width - pad.right + 6, y: y(lufs) + 4, class: "target-label",
        "data-lufs": lufs, "data-testid": "target-label" }, `${minus(lufs)} LUFS`));
    }
    // The curve: one point at the end of every hop; a gap where it is below the gate.
    let path = "";
    let pen = false;
    values.forEach((v, i) => {
      if (v === null) {
        pen = false;
        return;
      }
      path += `${pen ? "L" : "M"}${x((i + 1) * hop).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    svg.append(el("path", { d: path, class: "curve", "data-testid": "loudness-curve" }));
    values.forEach((v, i) => {
      if (v !== null) svg.append(el("circle", { cx: x((i + 1) * hop), cy: y(v), r: 2.5, class: "curve-point" }));
    });
    box.append(svg);
    box.dataset.points = String(levels.length);
  }

  drawLoudness();
  drawWaveform();
})();
