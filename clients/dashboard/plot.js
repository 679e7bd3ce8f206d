// Line charts on a <canvas>, written for this dashboard (no library): linear or log y axis,
// "nice" ticks, step series (zero-order-hold controls), dashed reference lines, a legend.
// TRCPlot.draw(canvas, {series: [{label, x, y, color, step, dash, markers, radius}], xLabel, yLabel,
//                       logY, integerX, empty})
'use strict';

const TRCPlot = (() => {
  const M = { left: 64, right: 14, top: 30, bottom: 42 }; // plot margins in CSS pixels
  const FONT = '12px system-ui, -apple-system, "Segoe UI", sans-serif';

  // A round step near range/(count-1): 1, 2, 2.5 or 5 times a power of ten.
  function niceStep(range, count) {
    const raw = range / Math.max(1, count - 1);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / mag;
    const nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
    return nice * mag;
  }

  function linearTicks(lo, hi, count) {
    const step = niceStep(hi - lo, count);
    const ticks = [];
    // Tolerance of 1e-3 steps: an end that misses a round value by rounding (15 * 0.3333333)
    // still gets its tick.
    const first = Math.ceil(lo / step - 1e-3);
    for (let k = first; k * step <= hi + step * 1e-3; k++) {
      const v = k * step;
      ticks.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
    }
    return ticks;
  }

  // Powers of ten over the range; with few decades also 2x and 5x, so a short curve has labels.
  function logTicks(lo, hi) {
    const a = Math.floor(Math.log10(lo)), b = Math.ceil(Math.log10(hi));
    const mults = b - a <= 2 ? [1, 2, 5] : [1];
    const ticks = [];
    for (let e = a; e <= b; e++) {
      for (const k of mults) {
        const v = k * Math.pow(10, e);
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) ticks.push(v);
      }
    }
    return ticks;
  }

  function fmt(v) {
    if (v === 0) return '0';
    const a = Math.abs(v);
    if (a >= 1e4 || a < 1e-3) return v.toExponential(a.toExponential(1).includes('.0e') ? 0 : 1);
    return String(Number(v.toPrecision(3)));
  }

  // Data range over finite values (positive only on a log axis), padded when flat.
  function extent(series, key, positive) {
    let lo = Infinity, hi = -Infinity;
    for (const s of series) {
      for (const v of s[key]) {
        if (!Number.isFinite(v) || (positive && v <= 0)) continue;
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
    if (lo > hi) return null;
    if (lo === hi) {
      if (positive) return [lo / 2, hi * 2];
      const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
      return [lo - pad, hi + pad];
    }
    return [lo, hi];
  }

  // Sizes the backing store to the element's CSS size times the device pixel ratio.
  function setup(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = FONT;
    return { ctx, w, h };
  }

  function draw(canvas, opts) {
    const series = (opts.series || []).filter((s) => s.y && s.y.length);
    const { ctx, w, h } = setup(canvas);
    canvas.dataset.points = '0';
    canvas.dataset.series = String(series.length);
    canvas.dataset.labels = JSON.stringify(series.map((s) => s.label || ''));
    canvas.dataset.xLabel = opts.xLabel || '';
    canvas.dataset.yLabel = opts.yLabel || '';
    const xr = extent(series, 'x', false);
    let yr = extent(series, 'y', !!opts.logY);
    if (!xr || !yr) {
      ctx.fillStyle = '#8a94a6';
      ctx.textAlign = 'center';
      ctx.fillText(opts.empty || 'no data', w / 2, h / 2);
      return;
    }
    const pw = w - M.left - M.right, ph = h - M.top - M.bottom;
    let yticks;
    if (opts.logY) {
      yr = [Math.pow(10, Math.floor(Math.log10(yr[0]) * 4) / 4),
            Math.pow(10, Math.ceil(Math.log10(yr[1]) * 4) / 4)];
      yticks = logTicks(yr[0], yr[1]);
    } else {
      yticks = linearTicks(yr[0], yr[1], 6);
      const step = yticks.length > 1 ? yticks[1] - yticks[0] : 1;
      yr = [Math.min(yr[0], Math.floor(yr[0] / step) * step), Math.max(yr[1], Math.ceil(yr[1] / step) * step)];
      yticks = linearTicks(yr[0], yr[1], 6);
    }
    let xticks = linearTicks(xr[0], xr[1], Math.max(3, Math.min(10, Math.floor(pw / 70))));
    if (opts.integerX) xticks = xticks.filter((v) => Number.isInteger(Math.round(v * 1e9) / 1e9));
    const X = (v) => M.left + ((v - xr[0]) / (xr[1] - xr[0])) * pw;
    const Y = opts.logY
      ? (v) => M.top + ph - ((Math.log10(v) - Math.log10(yr[0])) / (Math.log10(yr[1]) - Math.log10(yr[0]))) * ph
      : (v) => M.top + ph - ((v - yr[0]) / (yr[1] - yr[0])) * ph;

    // grid and tick labels
    ctx.strokeStyle = '#e6e9ef';
    ctx.lineWidth = 1;
    ctx.fillStyle = '#5b6475';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const v of yticks) {
      const y = Math.round(Y(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(M.left, y); ctx.lineTo(M.left + pw, y); ctx.stroke();
      ctx.fillText(fmt(v), M.left - 6, y);
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (const v of xticks) {
      const x = Math.round(X(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, M.top); ctx.lineTo(x, M.top + ph); ctx.stroke();
      ctx.fillText(fmt(v), x, M.top + ph + 5);
    }
    ctx.strokeStyle = '#9aa3b2';
    ctx.strokeRect(M.left + 0.5, M.top + 0.5, pw, ph);
    if (!opts.logY && yr[0] < 0 && yr[1] > 0) { // the zero line, where controls change sign
      ctx.strokeStyle = '#b8bfcc';
      ctx.beginPath(); ctx.moveTo(M.left, Math.round(Y(0)) + 0.5); ctx.lineTo(M.left + pw, Math.round(Y(0)) + 0.5); ctx.stroke();
    }

    // axis titles
    ctx.fillStyle = '#2b3240';
    if (opts.xLabel) ctx.fillText(opts.xLabel, M.left + pw / 2, h - 16);
    if (opts.yLabel) {
      ctx.save();
      ctx.translate(13, M.top + ph / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textBaseline = 'middle';
      ctx.fillText(opts.yLabel, 0, 0);
      ctx.restore();
    }

    // series, clipped to the plot area
    let points = 0;
    ctx.save();
    ctx.beginPath(); ctx.rect(M.left, M.top, pw, ph); ctx.clip();
    for (const s of series) {
      ctx.strokeStyle = s.color || '#2563eb';
      ctx.fillStyle = s.color || '#2563eb';
      ctx.lineWidth = s.width || 2;
      ctx.setLineDash(s.dash || []);
      ctx.beginPath();
      let pen = false;
      const ok = (i) => Number.isFinite(s.x[i]) && Number.isFinite(s.y[i]) && (!opts.logY || s.y[i] > 0);
      for (let i = 0; i < s.y.length; i++) {
        if (!ok(i)) { pen = false; continue; }
        const x = X(s.x[i]), y = Y(s.y[i]);
        if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
        pen = true;
        points++;
        if (s.step && i + 1 < s.x.length) ctx.lineTo(X(s.x[i + 1]), y); // hold until the next step
      }
      ctx.stroke();
      ctx.setLineDash([]);
      if (s.markers !== false && !s.dash && s.y.length <= 40) {
        for (let i = 0; i < s.y.length; i++) {
          if (!ok(i)) continue;
          ctx.beginPath(); ctx.arc(X(s.x[i]), Y(s.y[i]), s.radius || 2.6, 0, 2 * Math.PI); ctx.fill();
        }
      }
    }
    ctx.restore();

    // legend, top left, one swatch per labelled series
    let lx = M.left;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'middle';
    for (const s of series) {
      if (!s.label) continue;
      ctx.strokeStyle = s.color || '#2563eb';
      ctx.lineWidth = 2;
      ctx.setLineDash(s.dash || []);
      ctx.beginPath(); ctx.moveTo(lx, 14); ctx.lineTo(lx + 18, 14); ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = '#2b3240';
      ctx.fillText(s.label, lx + 23, 14);
      lx += 23 + ctx.measureText(s.label).width + 16;
    }
    canvas.dataset.points = String(points);
  }

  return { draw, niceStep, linearTicks, logTicks, fmt };
})();
