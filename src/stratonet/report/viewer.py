"""The plate viewer: CSS and a small, hand-readable script embedded in the report (no library, works offline).

Data comes from one ``<script type="application/json" id="viewer-data">`` block:
``{"channels": {plate: [[name, "#rrggbb"], ...]}, "plates": {plate: {well: {"meta", "numbers", "sites"}}}}``.
Each site's ``src`` is one grayscale JPEG strip: its channels side by side (already scaled per plate); when
classical masks exist, ``outlines`` is a PNG of the outlines (nuclei 255, cells 128). The script recolours the
strip on a canvas, so channel toggles cost no extra bytes.

Clicking a well on any plate map opens it; so does the URL fragment ``#well=B02`` or ``#well=PLATE/B02``.
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
  function paint(canvas, img, outlineImg, channels) {
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
          if (m > 190) { r = 0; g = 255; b = 255; } else if (m > 64) { r = 255; g = 230; b = 0; }
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
      lab.appendChild(cb); lab.appendChild(document.createTextNode(' outlines (nuclei cyan, cells yellow)'));
      bar.appendChild(lab);
    }
    box.appendChild(bar);
    var row = el('div', {'class': 'sites'});
    rec.sites.forEach(function (s) {
      var card = el('div', {'class': 'site-card'});
      if (s.src) {
        var cv = el('canvas', {'class': 'site', title: 'site ' + s.site});
        var img = new Image(), lines = s.outlines ? new Image() : null, waiting = lines ? 2 : 1;
        var done = function () { if (--waiting === 0) paint(cv, img, lines, channels); };
        img.onload = done; img.src = s.src;
        if (lines) { lines.onload = done; lines.src = s.outlines; }
        card.appendChild(cv);
      } else {
        card.appendChild(el('p', {'class': 'notrun'}, 'no image: ' + (s.error || 'not read')));
      }
      card.appendChild(el('div', {}, 'site ' + s.site + (s.note ? ' · ' + s.note : '')));
      row.appendChild(card);
    });
    box.appendChild(row);
    var info = el('div', {'class': 'figs'});
    info.appendChild(table(rec.meta)); info.appendChild(table(rec.numbers));
    box.appendChild(info);
  }

  document.addEventListener('click', function (ev) {
    var t = ev.target;
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
