"""The plate viewer: CSS and a small, hand-readable script embedded in the report (no library, works offline).

Data comes from one ``<script type="application/json" id="viewer-data">`` block:
``{"channels": {plate: [[name, "#rrggbb"], ...]}, "plates": {plate: {well: {"meta", "numbers", "sites"}}}}``.
Each site's ``src`` is one grayscale JPEG strip: its channels side by side (already scaled per plate); when
classical masks exist, ``outlines`` is a PNG of the outlines (nuclei 255, cells 128). The script recolours the
strip on a canvas, so channel toggles cost no extra bytes.

Clicking a well on any plate map opens it; so does the URL fragment ``#well=B02`` or ``#well=PLATE/B02``.

Clicking a site opens it enlarged (``#site-zoom``): the site's full-resolution channels (one grayscale JPEG each,
embedded as ``<script type="text/plain" id="site-full-N">`` and parsed only then), mouse-wheel zoom, drag to pan,
"1:1" for one image pixel per screen pixel, and per channel a toggle and a black / white point (contrast). Outlines
use ``data.outlines[plate]``: colours no channel of the plate uses.
"""

CSS = """
.platemaps{display:flex;flex-wrap:wrap;gap:10px 18px;align-items:flex-start}
figure.platemap{margin:0} figure.platemap figcaption{font-size:12px;color:#1d2430;margin-bottom:2px}
svg.plate rect.w{cursor:pointer} svg.plate rect.w:hover{stroke:#000;stroke-width:2}
svg.plate rect.sel{stroke:#000;stroke-width:2.5}
.legend{font-size:11px;color:#444;display:flex;flex-wrap:wrap;gap:4px 10px;align-items:center;max-width:420px}
.legend i{display:inline-block;width:11px;height:11px;margin-right:3px;vertical-align:middle;border:1px solid #999}
.legend i.bar{width:120px;height:10px}
#viewer{border:1px solid #c9d2dc;background:#fafbfc;padding:8px 12px;margin-top:10px;min-height:40px}
#viewer .sites{display:flex;flex-wrap:wrap;gap:10px} #viewer canvas{border:1px solid #ccd;image-rendering:auto}
#viewer .toggles label{margin-right:10px;font-size:12.5px;white-space:nowrap}
#viewer .toggles i{display:inline-block;width:10px;height:10px;margin:0 3px;border-radius:2px}
#viewer table{font-size:12px} .site-card{font-size:12px}
.montage{display:flex;flex-wrap:wrap;gap:14px} .montage figure{max-width:100%}
.strip{display:flex;gap:3px;margin-top:3px} .strip figure{margin:0;font-size:10px;text-align:center}
.strip img{border:none}
.chlegend{font-size:11.5px} .chlegend i{display:inline-block;width:10px;height:10px;margin:0 3px 0 8px}
.examples{display:flex;flex-wrap:wrap;gap:10px} .examples figure{font-size:11.5px;width:150px}
#viewer canvas.site,img.rep-img{cursor:zoom-in}
.cellrow{display:flex;flex-wrap:wrap;gap:8px;margin:4px 0 10px 0}
.cellcard{margin:0;width:132px;font-size:11px;color:#333} .cellcard .slot{width:120px;height:120px;background:#000}
.cellcard canvas{width:120px;height:120px;image-rendering:pixelated;border:1px solid #ccd}
#site-zoom{position:fixed;inset:0;background:#0a0e14;z-index:50;display:flex;flex-direction:column;
color:#eee;font-size:13px}
#site-zoom .bar{display:flex;flex-wrap:wrap;gap:6px 16px;align-items:center;padding:8px 14px;background:#1d2430}
#site-zoom .bar button{font-size:13px;padding:2px 10px;cursor:pointer}
#site-zoom .ch{display:inline-flex;gap:4px;align-items:center;white-space:nowrap}
#site-zoom .ch i{display:inline-block;width:10px;height:10px;border-radius:2px}
#site-zoom input[type=range]{width:90px}
#site-zoom .stage{flex:1;position:relative;overflow:hidden;cursor:grab}
#site-zoom .stage canvas.zoom-view{position:absolute;left:0;top:0;width:100%;height:100%}
#site-zoom .info{padding:4px 14px;color:#bbb;font-size:12px}
"""

JS = r"""
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('viewer-data').textContent);
  var box = document.getElementById('viewer');
  var hidden = {};  // channel name -> true when toggled off
  var showOutlines = true;
  var current = null;  // [plate, well]

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function rgb(hex) {
    return [parseInt(hex.substr(1, 2), 16), parseInt(hex.substr(3, 2), 16), parseInt(hex.substr(5, 2), 16)];
  }

  function pixels(img) {
    var off = el('canvas'); off.width = img.naturalWidth; off.height = img.naturalHeight;
    var octx = off.getContext('2d'); octx.drawImage(img, 0, 0);
    return octx.getImageData(0, 0, off.width, off.height).data;
  }

  // Recolour one strip: sum the enabled channels in their colours, then paint outlines on top.
  function outlineRgb(plate) {
    var o = (data.outlines || {})[plate] || {Nuclei: ['white', '#ffffff'], Cells: ['magenta', '#ff33ff']};
    return {nuclei: rgb(o.Nuclei[1]), cells: rgb(o.Cells[1]), text: 'nuclei ' + o.Nuclei[0] + ', cells ' + o.Cells[0]};
  }

  function paint(canvas, img, outlineImg, channels, oc) {
    var w = Math.round(img.naturalWidth / channels.length), h = img.naturalHeight, stride = img.naturalWidth;
    var src = pixels(img), lines = outlineImg ? pixels(outlineImg) : null;
    canvas.width = w; canvas.height = h;
    var ctx = canvas.getContext('2d'), out = ctx.createImageData(w, h), o = out.data, lit = 0;
    var cols = channels.map(function (c) { return hidden[c[0]] ? null : rgb(c[1]); });
    var gain = Math.min(1, 2.5 / Math.max(1, cols.filter(Boolean).length));  // as images.MIX_CHANNELS
    for (var y = 0; y < h; y++) {
      for (var x = 0; x < w; x++) {
        var r = 0, g = 0, b = 0;
        for (var c = 0; c < channels.length; c++) {
          if (!cols[c]) continue;
          var v = src[(y * stride + c * w + x) * 4] / 255;
          r += gain * v * cols[c][0]; g += gain * v * cols[c][1]; b += gain * v * cols[c][2];
        }
        if (lines && showOutlines) {
          var m = lines[(y * w + x) * 4];
          if (m > 190) { r = oc.nuclei[0]; g = oc.nuclei[1]; b = oc.nuclei[2]; }
          else if (m > 64) { r = oc.cells[0]; g = oc.cells[1]; b = oc.cells[2]; }
        }
        var i = (y * w + x) * 4;
        o[i] = Math.min(255, r); o[i + 1] = Math.min(255, g); o[i + 2] = Math.min(255, b); o[i + 3] = 255;
        if (r + g + b > 30) lit++;
      }
    }
    ctx.putImageData(out, 0, 0);
    canvas.setAttribute('data-painted', String(lit));
  }

  function table(obj) {
    var t = el('table');
    Object.keys(obj).forEach(function (k) {
      var tr = el('tr'); tr.appendChild(el('th', {'class': 't'}, k)); tr.appendChild(el('td', {'class': 't'}, obj[k]));
      t.appendChild(tr);
    });
    return t;
  }

  function open(plate, well) {
    var wells = data.plates[plate];
    if (!wells) return;
    current = [plate, well];
    var rec = wells[well];
    var rects = document.querySelectorAll('rect.w');
    for (var i = 0; i < rects.length; i++) {
      var on = rects[i].getAttribute('data-plate') === plate && rects[i].getAttribute('data-well') === well;
      rects[i].classList.toggle('sel', on);
    }
    box.innerHTML = '';
    box.setAttribute('data-well', plate + '/' + well);
    box.appendChild(el('h3', {}, 'Plate ' + plate + ', well ' + well));
    if (!rec) { box.appendChild(el('p', {'class': 'notrun'}, 'empty well: no sites in the index')); return; }
    var channels = data.channels[plate] || [];
    var bar = el('div', {'class': 'toggles'});
    channels.forEach(function (c) {
      var lab = el('label'), cb = el('input', {type: 'checkbox'});
      cb.checked = !hidden[c[0]];
      cb.addEventListener('change', function () { hidden[c[0]] = !cb.checked; open(plate, well); });
      var sw = el('i'); sw.style.background = c[1];
      lab.appendChild(cb); lab.appendChild(sw); lab.appendChild(document.createTextNode(c[0]));
      bar.appendChild(lab);
    });
    if (rec.sites.some(function (s) { return s.outlines; })) {
      var lab = el('label'), cb = el('input', {type: 'checkbox'});
      cb.checked = showOutlines;
      cb.addEventListener('change', function () { showOutlines = cb.checked; open(plate, well); });
      lab.appendChild(cb); lab.appendChild(document.createTextNode(' outlines (' + outlineRgb(plate).text + ')'));
      bar.appendChild(lab);
    }
    box.appendChild(bar);
    var row = el('div', {'class': 'sites'});
    rec.sites.forEach(function (s) {
      var card = el('div', {'class': 'site-card'}), hint = '';
      if (s.src) {
        var cv = el('canvas', {'class': 'site', title: 'site ' + s.site});
        var img = new Image(), lines = s.outlines ? new Image() : null, waiting = lines ? 2 : 1;
        var done = function () { if (--waiting === 0) paint(cv, img, lines, channels, outlineRgb(plate)); };
        if (s.full) {
          cv.setAttribute('title', 'site ' + s.site + ': click to enlarge (full resolution, zoom, contrast)');
          hint = ' · click to enlarge';
          cv.addEventListener('click', function () { zoom.open(plate, well, s); });
        }
        img.onload = done; img.src = s.src;
        if (lines) { lines.onload = done; lines.src = s.outlines; }
        card.appendChild(cv);
      } else {
        card.appendChild(el('p', {'class': 'notrun'}, 'no image: ' + (s.error || 'not read')));
      }
      card.appendChild(el('div', {}, 'site ' + s.site + (s.note ? ' · ' + s.note : '') + hint));
      row.appendChild(card);
    });
    box.appendChild(row);
    var info = el('div', {'class': 'figs'});
    info.appendChild(table(rec.meta)); info.appendChild(table(rec.numbers));
    box.appendChild(info);
    cellsPanel(plate, well, rec, channels);
  }

  // --- per-cell view: cells cut out of the sites' full-resolution images ------------------------------------------
  var fullCache = {}, cacheOrder = [], pending = {};

  function sitePlanes(id, done) {  // decode a site's channels once; later callers wait for the same decode
    if (fullCache[id]) { done(fullCache[id]); return; }
    if (pending[id]) { pending[id].push(done); return; }
    pending[id] = [done];
    var f = JSON.parse(document.getElementById(id).textContent);
    if (f.error) return;
    var n = f.ch.length, planes = new Array(n);
    f.ch.forEach(function (uri, i) {
      var im = new Image();
      im.onload = function () {
        planes[i] = pixels(im);
        if (--n === 0) {
          fullCache[id] = {f: f, planes: planes}; cacheOrder.push(id);
          if (cacheOrder.length > 8) delete fullCache[cacheOrder.shift()];
          var waiting = pending[id]; delete pending[id];
          waiting.forEach(function (cb) { cb(fullCache[id]); });
        }
      };
      im.src = uri;
    });
  }

  function cropCanvas(site, cell, crop, channels) {
    var f = site.f, s = f.native ? f.w / f.native[1] : 1, size = Math.max(8, Math.round(crop * s));
    var x0 = Math.max(0, Math.min(f.w - size, Math.round(cell.x * s - size / 2)));
    var y0 = Math.max(0, Math.min(f.h - size, Math.round(cell.y * s - size / 2)));
    var cv = el('canvas', {'class': 'cell'}); cv.width = size; cv.height = size;
    var ctx = cv.getContext('2d'), out = ctx.createImageData(size, size), o = out.data;
    var cols = channels.map(function (c) { return hidden[c[0]] ? null : rgb(c[1]); });
    var gain = Math.min(1, 2.5 / Math.max(1, cols.filter(Boolean).length));
    for (var y = 0; y < size; y++) {
      for (var x = 0; x < size; x++) {
        var p = ((y0 + y) * f.w + (x0 + x)) * 4, r = 0, g = 0, b = 0;
        for (var c = 0; c < cols.length; c++) {
          if (!cols[c]) continue;
          var v = site.planes[c][p] / 255;
          r += gain * v * cols[c][0]; g += gain * v * cols[c][1]; b += gain * v * cols[c][2];
        }
        var i = (y * size + x) * 4;
        o[i] = Math.min(255, r); o[i + 1] = Math.min(255, g); o[i + 2] = Math.min(255, b); o[i + 3] = 255;
      }
    }
    ctx.putImageData(out, 0, 0);
    return cv;
  }

  function cellsPanel(plate, well, rec, channels) {
    var cd = data.cells || {}, list = ((cd.wells || {})[plate] || {})[well];
    if (!list || !list.length) return;
    var wrap = el('div', {'class': 'cells', id: 'cells-panel'});
    wrap.appendChild(el('h4', {}, 'Cells of this well (from ' + cd.table[plate] + ')'));
    wrap.appendChild(el('p', {'class': 'muted'}, 'Top row: the cells nearest the well\'s median cell on the ' +
      'measurements listed (robust z-scores over the plate); bottom row: a random sample. Each crop is ' +
      cd.crop[plate] + ' px of the stored image, centred on the cell.'));
    ['median', 'random'].forEach(function (kind) {
      var row = el('div', {'class': 'cellrow'});
      list.filter(function (c) { return c.pick === kind; }).forEach(function (cell) {
        var card = el('figure', {'class': 'cellcard'}), slot = el('div', {'class': 'slot'});
        card.appendChild(slot);
        var cap = el('figcaption');
        cap.appendChild(el('div', {}, 'site ' + cell.site + ' · (' + Math.round(cell.x) + ', ' + Math.round(cell.y) + ')'));
        cd.labels[plate].forEach(function (lab, i) { cap.appendChild(el('div', {}, lab + ': ' + cell.m[i])); });
        card.appendChild(cap); row.appendChild(card);
        var site = rec.sites.filter(function (s) { return s.site === cell.site && s.full; })[0];
        if (site) sitePlanes(site.full, function (sp) { slot.appendChild(cropCanvas(sp, cell, cd.crop[plate], channels)); });
        else slot.appendChild(el('span', {'class': 'notrun'}, 'no image'));
      });
      wrap.appendChild(el('div', {'class': 'muted'}, kind === 'median' ? 'nearest the median cell' : 'random sample'));
      wrap.appendChild(row);
    });
    box.appendChild(wrap);
  }

  // --- the enlarged site: full resolution, zoom and pan, per-channel contrast ------------------------------------
  var zoom = (function () {
    var root = null, view = null, full = null, planes = [], comp = null, st = {};

    function decode(uri, done) {
      var im = new Image();
      im.onload = function () { done(pixels(im)); };
      im.src = uri;
    }

    function compose() {  // channels -> one RGB canvas at full size, with the current toggles and contrast
      var w = full.w, h = full.h, n = planes.length, ctx = comp.getContext('2d'), out = ctx.createImageData(w, h);
      var o = out.data, lit = 0, on = st.channels.filter(function (c) { return c.on; }).length;
      var gain = Math.min(1, 2.5 / Math.max(1, on));
      for (var i = 0, p = 0; i < w * h; i++, p += 4) {
        var r = 0, g = 0, b = 0;
        for (var c = 0; c < n; c++) {
          var ch = st.channels[c];
          if (!ch.on) continue;
          var v = (planes[c][p] - ch.lo) / Math.max(1, ch.hi - ch.lo);
          v = v < 0 ? 0 : (v > 1 ? 1 : v);
          r += gain * v * ch.rgb[0]; g += gain * v * ch.rgb[1]; b += gain * v * ch.rgb[2];
        }
        if (st.lines && st.showLines) {
          var m = st.lines[p];
          if (m > 190) { r = st.oc.nuclei[0]; g = st.oc.nuclei[1]; b = st.oc.nuclei[2]; }
          else if (m > 64) { r = st.oc.cells[0]; g = st.oc.cells[1]; b = st.oc.cells[2]; }
        }
        o[p] = r > 255 ? 255 : r; o[p + 1] = g > 255 ? 255 : g; o[p + 2] = b > 255 ? 255 : b; o[p + 3] = 255;
        if (r + g + b > 30) lit++;
      }
      ctx.putImageData(out, 0, 0);
      comp.setAttribute('data-painted', String(lit));
      draw();
    }

    function draw() {  // the composed canvas on screen at scale st.k, offset (st.x, st.y)
      var c = view, ctx = c.getContext('2d');
      var box = c.parentNode.getBoundingClientRect();
      c.width = Math.max(1, Math.round(box.width)); c.height = Math.max(1, Math.round(box.height));
      ctx.fillStyle = '#000'; ctx.fillRect(0, 0, c.width, c.height);
      ctx.imageSmoothingEnabled = st.k < 1;
      ctx.drawImage(comp, st.x, st.y, full.w * st.k, full.h * st.k);
      info.textContent = 'zoom ' + (st.k >= 1 ? st.k.toFixed(st.k < 10 ? 1 : 0) : st.k.toFixed(2)) + 'x · image ' +
        full.w + ' x ' + full.h + ' px' + (full.native && full.native[1] !== full.w ? ' (stored ' + full.native[1] +
        ' x ' + full.native[0] + ' px; embedded smaller to keep the report small)' : ' (full resolution)') +
        ' · wheel: zoom, drag: pan, double-click: fit, Esc: close';
    }

    function fit() {
      var box = view.parentNode.getBoundingClientRect(), W = box.width, H = box.height;
      st.k = Math.min(W / full.w, H / full.h);
      st.x = (W - full.w * st.k) / 2; st.y = (H - full.h * st.k) / 2;
      draw();
    }

    function zoomAt(f, px, py) {
      var k = Math.max(0.05, Math.min(40, st.k * f));
      st.x = px - (px - st.x) * k / st.k; st.y = py - (py - st.y) * k / st.k; st.k = k;
      draw();
    }

    var info = el('div', {'class': 'info'});

    function controls(plate) {
      var bar = el('div', {'class': 'bar'});
      var close = el('button', {type: 'button', title: 'close (Esc)'}, 'close');
      close.addEventListener('click', shut);
      var one = el('button', {type: 'button', title: 'one image pixel per screen pixel'}, '1:1');
      one.addEventListener('click', function () {
        zoomAt(1 / st.k, view.width / 2, view.height / 2);
      });
      var fitb = el('button', {type: 'button'}, 'fit');
      fitb.addEventListener('click', fit);
      bar.appendChild(close); bar.appendChild(one); bar.appendChild(fitb);
      st.channels.forEach(function (ch) {
        var box = el('span', {'class': 'ch'}), cb = el('input', {type: 'checkbox'}), sw = el('i');
        cb.checked = ch.on; sw.style.background = ch.hex;
        cb.addEventListener('change', function () { ch.on = cb.checked; compose(); });
        var lo = el('input', {type: 'range', min: '0', max: '254', value: String(ch.lo), title: ch.name + ' black point'});
        var hi = el('input', {type: 'range', min: '1', max: '255', value: String(ch.hi), title: ch.name + ' white point'});
        lo.addEventListener('input', function () { ch.lo = Math.min(+lo.value, ch.hi - 1); compose(); });
        hi.addEventListener('input', function () { ch.hi = Math.max(+hi.value, ch.lo + 1); compose(); });
        box.appendChild(cb); box.appendChild(sw); box.appendChild(document.createTextNode(ch.name + ' '));
        box.appendChild(lo); box.appendChild(hi);
        bar.appendChild(box);
      });
      if (st.lines) {
        var lab = el('label', {'class': 'ch'}), cb = el('input', {type: 'checkbox'});
        cb.checked = st.showLines;
        cb.addEventListener('change', function () { st.showLines = cb.checked; compose(); });
        lab.appendChild(cb); lab.appendChild(document.createTextNode('outlines (' + st.oc.text + ')'));
        bar.appendChild(lab);
      }
      return bar;
    }

    function shut() {
      if (root) { root.parentNode.removeChild(root); root = null; }
      document.removeEventListener('keydown', onKey);
    }

    function onKey(ev) { if (ev.key === 'Escape') shut(); }

    function open(plate, well, site) {
      shut();
      full = JSON.parse(document.getElementById(site.full).textContent);
      if (full.error) { return; }
      st = {k: 1, x: 0, y: 0, oc: outlineRgb(plate), showLines: true, lines: null,
            channels: (data.channels[plate] || []).map(function (c) {
              return {name: c[0], hex: c[1], rgb: rgb(c[1]), on: !hidden[c[0]], lo: 0, hi: 255};
            })};
      root = el('div', {id: 'site-zoom', role: 'dialog', 'aria-label': 'site ' + plate + '/' + well + '/' + site.site,
                        'data-site': plate + '/' + well + '/' + site.site});
      var title = el('div', {'class': 'info'}, 'Plate ' + plate + ', well ' + well + ', site ' + site.site +
                     (site.note ? ' · ' + site.note : ''));
      var stage = el('div', {'class': 'stage'});
      view = el('canvas', {'class': 'zoom-view'});
      comp = el('canvas', {'class': 'zoom-full', width: String(full.w), height: String(full.h)});
      comp.width = full.w; comp.height = full.h;
      comp.setAttribute('data-native', full.native ? full.native[1] + 'x' + full.native[0] : '');
      comp.style.display = 'none';
      stage.appendChild(view); stage.appendChild(comp);
      root.appendChild(title);
      document.body.appendChild(root);
      var waiting = full.ch.length + (full.outlines ? 1 : 0);
      planes = new Array(full.ch.length);
      var ready = function () {
        if (--waiting > 0) return;
        root.appendChild(controls(plate)); root.appendChild(stage); root.appendChild(info);
        compose(); fit();
      };
      full.ch.forEach(function (uri, i) { decode(uri, function (px) { planes[i] = px; ready(); }); });
      if (full.outlines) decode(full.outlines, function (px) { st.lines = px; ready(); });
      var drag = null;
      stage.addEventListener('wheel', function (ev) {
        ev.preventDefault();
        var r = view.getBoundingClientRect();
        zoomAt(ev.deltaY < 0 ? 1.25 : 0.8, ev.clientX - r.left, ev.clientY - r.top);
      }, {passive: false});
      stage.addEventListener('mousedown', function (ev) { drag = [ev.clientX - st.x, ev.clientY - st.y]; });
      window.addEventListener('mouseup', function () { drag = null; });
      stage.addEventListener('mousemove', function (ev) {
        if (drag) { st.x = ev.clientX - drag[0]; st.y = ev.clientY - drag[1]; draw(); }
      });
      stage.addEventListener('dblclick', fit);
      document.addEventListener('keydown', onKey);
      window.addEventListener('resize', function () { if (root) draw(); });
    }

    return {open: open};
  })();
  window.stratonetZoom = zoom;

  document.addEventListener('click', function (ev) {
    var t = ev.target;
    if (t && t.classList && t.classList.contains('rep-img')) {  // a representative image: enlarge its site
      var k = t.getAttribute('data-site').split('/'), site = k.pop(), well = k.pop(), plate = k.join('/');
      var rec = ((data.plates[plate] || {})[well] || {sites: []}).sites.filter(function (s) {
        return s.site === site && s.full;
      })[0];
      if (rec) zoom.open(plate, well, rec);
      return;
    }
    if (t && t.classList && t.classList.contains('w')) {
      open(t.getAttribute('data-plate'), t.getAttribute('data-well'));
      history.replaceState(null, '', '#well=' + t.getAttribute('data-plate') + '/' + t.getAttribute('data-well'));
    }
  });

  function fromHash() {
    var m = /well=([^&]+)/.exec(decodeURIComponent(location.hash || ''));
    if (!m) return false;
    var parts = m[1].split('/'), well = parts.pop(), plate = parts.join('/');
    if (!plate) {
      plate = Object.keys(data.plates).filter(function (p) { return data.plates[p][well]; })[0];
    }
    if (plate) { open(plate, well); box.scrollIntoView(); return true; }
    return false;
  }
  window.addEventListener('hashchange', fromHash);
  fromHash();
})();
"""
