// Prism viewer: draws the timeline lanes from /v1/titles/<id>/timeline; a click on a lane (or an event) seeks the player.
(function () {
  const tl = document.getElementById('timeline');
  const player = document.getElementById('player');
  const now = document.getElementById('now');
  if (!tl) return;
  const id = tl.dataset.title, duration = parseFloat(tl.dataset.duration) || 1, start = parseFloat(tl.dataset.start) || 0;
  const LEFT = 110;
  const colours = {shots: '#546e7a', scenes: '#7e57c2', speech: '#1e88e5', subtitles: '#00897b', ocr: '#6d4c41', structure: '#f9a825',
                   qc_fail: '#c62828', qc_warn: '#ef6c00', qc_info: '#9e9e9e'};
  function seek(t) {
    t = Math.max(0, Math.min(duration, t));
    if (player) { player.currentTime = t; }
    moveCursor(t);
  }
  function x(t) { return LEFT + (tl.clientWidth - LEFT) * (t / duration); }
  const cursor = document.createElement('div'); cursor.className = 'cursor'; tl.appendChild(cursor);
  function moveCursor(t) { cursor.style.left = x(t) + 'px'; if (now) now.textContent = 'at ' + t.toFixed(2) + ' s'; }
  function lane(name, items, label, colour) {
    const el = document.createElement('div'); el.className = 'lane'; el.dataset.lane = name;
    const n = document.createElement('div'); n.className = 'name'; n.textContent = label; el.appendChild(n);
    for (const it of items) {
      const s = document.createElement('div'); s.className = 'seg';
      const a = it.start_s, b = Math.max(it.end_s == null ? duration : it.end_s, a + duration / 1000);
      s.style.left = x(a) + 'px'; s.style.width = Math.max(2, x(b) - x(a) - 1) + 'px';
      s.style.background = typeof colour === 'function' ? colour(it) : colour;
      s.title = (it.text || it.detail || it.label || it.kind || '') + ' (' + a.toFixed(2) + ' s)';
      s.textContent = it.text || it.label || it.kind || '';
      s.dataset.start = a;
      el.appendChild(s);
    }
    el.addEventListener('click', (ev) => {
      const seg = ev.target.closest('.seg');
      if (seg) { seek(parseFloat(seg.dataset.start)); return; }
      const r = el.getBoundingClientRect();
      const px = ev.clientX - r.left - LEFT;
      if (px >= 0) seek(duration * px / (r.width - LEFT));
    });
    tl.appendChild(el);
  }
  function ruler() {  // a time axis: a tick every 1/2/5/10/30/60/300/600 s, about ten across
    const el = document.createElement('div'); el.className = 'lane ruler';
    const n = document.createElement('div'); n.className = 'name'; n.textContent = 'time'; el.appendChild(n);
    const step = [1, 2, 5, 10, 30, 60, 120, 300, 600, 1800].find(s => duration / s <= 12) || 3600;
    for (let t = 0; t <= duration; t += step) {
      const tick = document.createElement('div'); tick.className = 'tick'; tick.style.left = x(t) + 'px';
      const m = Math.floor(t / 60), s = Math.round(t % 60);
      tick.textContent = t >= 3600 ? Math.floor(t / 3600) + ':' + String(m % 60).padStart(2, '0') + ':' + String(s).padStart(2, '0') : m + ':' + String(s).padStart(2, '0');
      el.appendChild(tick);
    }
    el.addEventListener('click', (ev) => { const r = el.getBoundingClientRect(); const px = ev.clientX - r.left - LEFT; if (px >= 0) seek(duration * px / (r.width - LEFT)); });
    tl.appendChild(el);
  }
  fetch('/v1/titles/' + encodeURIComponent(id) + '/timeline', {credentials: 'same-origin'}).then(r => r.json()).then(d => {
    const L = d.lanes || {};
    ruler();
    lane('structure', L.structure || [], 'intro/recap/credits', colours.structure);
    lane('scenes', L.scenes || [], 'scenes', (it) => it.scene_index % 2 ? '#9575cd' : colours.scenes);
    lane('shots', L.shots || [], 'shots', (it) => it.unit_index % 2 ? '#78909c' : colours.shots);
    lane('speech', L.speech || [], 'speech', colours.speech);
    const byTrack = {};
    for (const c of (L.subtitles || [])) { (byTrack[c.track] = byTrack[c.track] || []).push(c); }
    for (const [t, cues] of Object.entries(byTrack)) lane('subtitles-' + t, cues, 'subtitles ' + t, colours.subtitles);
    lane('ocr', L.ocr || [], 'on-screen text', colours.ocr);
    lane('qc', L.qc || [], 'QC events', (it) => colours['qc_' + it.severity] || '#999');
    tl.appendChild(cursor);
    moveCursor(start);
  }).catch(() => { tl.textContent = 'The timeline could not be loaded.'; });
  if (player) {
    player.addEventListener('timeupdate', () => moveCursor(player.currentTime));
    player.addEventListener('loadedmetadata', () => { if (start > 0) player.currentTime = start; });
  }
  document.querySelectorAll('[data-seek]').forEach(a => a.addEventListener('click', (ev) => { ev.preventDefault(); seek(parseFloat(a.dataset.seek)); window.scrollTo(0, 0); }));
})();
