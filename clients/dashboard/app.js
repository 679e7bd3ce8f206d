// The dashboard's logic: talks to trcd's JSON API on the same origin, builds the training form
// and the state labels from GET /v1/catalog (core's tables: nothing is spelled here), polls the jobs
// (every 2 s, every 0.75 s while one is queued or running), renders models, jobs, a job's loss
// curves and control sequences. Every server error is shown in the page (#errors), not only
// in the console. Plots are drawn by plot.js; how a system's run is drawn is one entry of
// SYSTEM_VIEWS (a phase portrait for Van der Pol, altitude vs downrange and thrust magnitude for
// the rocket, states against time otherwise).
'use strict';

const POLL_IDLE_MS = 2000;
const POLL_ACTIVE_MS = 750;
const MODELS_EVERY_MS = 10000;
const MAX_ERRORS = 8;
const COLORS = ['#2563eb', '#ea580c', '#16a34a', '#9333ea', '#dc2626', '#0891b2'];

const $ = (id) => document.getElementById(id);
const ui = {
  token: localStorage.getItem('trc_token') || '',
  models: [],
  jobs: [],
  jobsKey: '',
  selected: null, // job id shown in the job card
  selectedJob: null,
  lastControl: null, // last /v1/control answer, redrawn on resize
  reachable: null,
  catalog: null, // GET /v1/catalog: systems, experts, option descriptors
  modelsAt: 0,
  timer: null,
};

// ---------------------------------------------------------------- talking to the server

class ApiError extends Error {
  constructor(code, type, message, param) {
    super(message);
    Object.assign(this, { code, type, param });
  }
  toString() {
    const where = this.param ? ` (field: ${this.param})` : '';
    return `${this.code || ''} ${this.type}: ${this.message}${where}`.trim();
  }
}

// One request; resolves to the decoded body or rejects with ApiError built from the server's
// {"error": {code, type, message, param}} (or from the status line when the body is not JSON).
async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (ui.token) headers.Authorization = `Bearer ${ui.token}`;
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, 'unreachable', `cannot reach the server (${e.message})`);
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!resp.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(err.code || resp.status, err.type || 'http_error',
      err.message || text.slice(0, 200) || resp.statusText, err.param);
  }
  return data;
}

// ---------------------------------------------------------------- errors and messages

function showError(context, err) {
  const list = $('error-list');
  const li = document.createElement('li');
  const time = new Date().toLocaleTimeString();
  li.textContent = `${time} · ${context} → ${err instanceof ApiError ? err.toString() : String(err)}`;
  if (err && err.type) li.dataset.type = err.type;
  list.prepend(li);
  while (list.children.length > MAX_ERRORS) list.lastChild.remove();
  $('errors').hidden = false;
  console.error(context, err);
}

function formMessage(id, text, kind) {
  const el = $(id);
  el.textContent = text;
  el.className = `form-msg ${kind || ''}`;
}

function setStatus(text, kind) {
  const pill = $('server-status');
  pill.textContent = text;
  pill.className = `pill pill-${kind}`;
}

// A poll that fails is reported once, when the server goes away, not on every poll.
function pollFailed(context, err) {
  if (err.code === 0) {
    if (ui.reachable !== false) showError(context, err);
    ui.reachable = false;
    setStatus('unreachable', 'bad');
  } else {
    showError(context, err);
  }
}

// ---------------------------------------------------------------- small helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : String(c)));
  return node;
}

const num = (v, digits = 3) => (v == null || !Number.isFinite(v) ? '–' : Number(v.toPrecision(digits)).toString());
const loss = (v) => (v == null || !Number.isFinite(v) ? '–' : v.toExponential(2));
const when = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '–');
const shortId = (id) => String(id).slice(0, 8);
// The named terms of a job's loss at its latest epoch (the objective's parts: imitation,
// terminal, ...; trcd reports them per history row when the objective has several), or null.
function lossTerms(job) {
  const h = (job && job.history) || [];
  const last = h[h.length - 1];
  return last && last.train_terms ? { epoch: last.epoch, train: last.train_terms, val: last.val_terms || {} } : null;
}
const termsText = (terms) => Object.entries(terms).map(([k, v]) => `${k} ${loss(v)}`).join(', ');
// trcd's timestamps have whole seconds, so a job's run time is known to about a second.
function duration(a, b) {
  if (!a) return '–';
  const s = ((b ? new Date(b) : new Date()) - new Date(a)) / 1000;
  if (s < 1) return '< 1 s';
  return s < 120 ? `${Math.round(s)} s` : `${(s / 60).toFixed(1)} min`;
}
function parseVector(text, field) {
  const parts = text.split(/[\s,;]+/).filter((p) => p !== '');
  if (!parts.length) throw new Error(`${field}: enter numbers separated by commas`);
  return parts.map((p) => {
    const v = Number(p);
    if (!Number.isFinite(v)) throw new Error(`${field}: "${p}" is not a number`);
    return v;
  });
}

// ---------------------------------------------------------------- models

async function refreshModels() {
  ui.modelsAt = Date.now();
  try {
    const data = await api('GET', '/v1/models');
    ui.models = data.models || [];
    renderModels();
  } catch (e) {
    pollFailed('GET /v1/models', e);
  }
}

function renderModels() {
  const body = $('models-table').tBodies[0];
  body.replaceChildren();
  if (!ui.models.length) body.append(el('tr', { class: 'empty' }, el('td', { colspan: 10 }, 'no models loaded')));
  for (const m of ui.models) {
    const c = m.config || {};
    // the saved settings that change what the network sees (named as /v1/models and trc info name them)
    const settings = [c.feedback ? 'feedback' : '', c.normalised ? 'normalised' : ''].filter(Boolean).join(', ');
    body.append(el('tr', { dataset: { model: m.name } },
      el('td', {}, el('strong', {}, m.name)), el('td', { class: 'arch' }, m.arch || '–'),
      el('td', { class: 'settings', title: 'feedback: the system simulated every cycle; normalised: states and controls scaled by the training split\'s mean and std' }, settings || '–'),
      el('td', {}, m.size || c.size || '–'),
      el('td', { class: 'num' }, m.num_params != null ? m.num_params.toLocaleString('en-US') : '–'),
      el('td', {}, m.system || c.system || '–'), el('td', {}, c.T != null ? `${c.T} × ${c.m}` : '–'),
      el('td', { class: 'mono' }, m.checkpoint || '–'),
      el('td', { class: 'mono', title: m.sha256 || '' }, (m.sha256 || '').slice(0, 12) || '–'),
      el('td', {}, when(m.loaded_at))));
  }
  const select = $('control-model');
  const keep = select.value;
  select.replaceChildren(...ui.models.map((m) => el('option', { value: m.name }, m.name)));
  if (ui.models.some((m) => m.name === keep)) select.value = keep;
  else if (ui.models.some((m) => m.name === 'default')) select.value = 'default';
  updateStepsLeft();
}

// "steps left" is for a model trained with tails (config.time_left): it plans the last L of
// its T steps (a shrinking-horizon closed loop asks with T - t at step t). Others plan all T.
function updateStepsLeft() {
  const input = $('control-steps-left');
  const m = ui.models.find((x) => x.name === $('control-model').value);
  const cfg = (m && m.config) || {};
  input.disabled = !cfg.time_left;
  if (cfg.time_left) {
    input.max = String(cfg.T);
    input.title = `plan the last 1..${cfg.T} steps of the horizon (empty: all ${cfg.T})`;
  } else {
    input.value = '';
    input.removeAttribute('max');
    input.title = 'only for a model trained with tails (trc train --tails): this one plans its whole horizon';
  }
}

// ---------------------------------------------------------------- jobs

function schedulePoll(ms) {
  clearTimeout(ui.timer);
  ui.timer = setTimeout(pollJobs, ms);
}

async function pollJobs() {
  let active = false;
  try {
    const ready = await fetch('/readyz').then((r) => r.ok, () => null);
    if (ready === null) throw new ApiError(0, 'unreachable', 'cannot reach the server');
    ui.reachable = true;
    setStatus(ready ? 'ready' : 'not ready', ready ? 'ok' : 'warn');
    const data = await api('GET', '/v1/jobs');
    const before = new Map(ui.jobs.map((j) => [j.job_id, j.status]));
    ui.jobs = data.jobs || [];
    active = ui.jobs.some((j) => !j.terminal);
    // A job that has just succeeded published a model: refresh the list at once.
    const published = ui.jobs.some((j) => j.status === 'succeeded' && before.has(j.job_id) && before.get(j.job_id) !== 'succeeded');
    if (published || Date.now() - ui.modelsAt > MODELS_EVERY_MS) await refreshModels();
    const key = JSON.stringify(ui.jobs.map((j) => [j.job_id, j.status, j.progress, j.metrics]));
    if (key !== ui.jobsKey) { ui.jobsKey = key; renderJobs(); }
    if (!ui.selected && ui.jobs.length) ui.selected = ui.jobs[0].job_id;
    if (ui.selected) await refreshSelected();
  } catch (e) {
    pollFailed('GET /v1/jobs', e);
  }
  const ms = active ? POLL_ACTIVE_MS : POLL_IDLE_MS;
  $('jobs-poll').textContent = `· refreshed ${new Date().toLocaleTimeString()}, every ${ms / 1000} s`;
  schedulePoll(ms);
}

function renderJobs() {
  const body = $('jobs-table').tBodies[0];
  body.replaceChildren();
  if (!ui.jobs.length) body.append(el('tr', { class: 'empty' }, el('td', { colspan: 9 }, 'no jobs yet')));
  for (const j of ui.jobs) {
    const p = j.progress || {};
    const m = j.metrics || {};
    const terms = lossTerms(j);
    const frac = Math.max(0, Math.min(1, p.fraction || (j.status === 'succeeded' ? 1 : 0)));
    const button = (label, cls, fn) => el('button', { type: 'button', class: `small ${cls}`, onclick: (ev) => { ev.stopPropagation(); fn(j.job_id); } }, label);
    const action = el('span', { class: 'actions' });
    if (!j.terminal) action.append(button('cancel', 'danger', cancelJob));
    if (j.status === 'failed' || j.status === 'cancelled') action.append(button('resume', 'ghost', resumeJob));
    if (j.terminal) action.append(button('delete', 'ghost', deleteJob));
    const row = el('tr', {
      class: `job${j.job_id === ui.selected ? ' selected' : ''}`,
      dataset: { jobId: j.job_id, status: j.status },
      onclick: () => { ui.selected = j.job_id; renderJobs(); refreshSelected(); },
    },
    el('td', { class: 'mono', title: j.job_id }, shortId(j.job_id)),
    el('td', {}, j.name || '–'),
    el('td', {}, el('span', { class: `badge badge-${j.status}` }, j.status)),
    el('td', {}, el('div', { class: 'progress', title: `${Math.round(frac * 100)} %` },
      el('div', { class: `fill fill-${j.status}`, style: `width:${(frac * 100).toFixed(1)}%` })),
    el('span', { class: 'muted small-text' }, `epoch ${p.epoch || 0}/${p.epochs || (j.spec && j.spec.epochs) || '?'}` +
        (!j.terminal && p.eta_seconds != null ? ` · eta ${Math.round(p.eta_seconds)} s` : ''))),
    el('td', { class: 'num', title: terms ? termsText(terms.train) : '' }, loss(m.train_loss)),
    el('td', { class: 'num', title: terms ? termsText(terms.val) : '' }, loss(m.val_loss)),
    el('td', { class: 'num' }, m.samples_per_sec != null ? Math.round(m.samples_per_sec).toLocaleString('en-US') : '–'),
    el('td', {}, when(j.created_at)),
    el('td', {}, action));
    body.append(row);
  }
}

async function refreshSelected() {
  const id = ui.selected;
  try {
    const job = await api('GET', `/v1/jobs/${encodeURIComponent(id)}`);
    if (id !== ui.selected) return;
    ui.selectedJob = job;
    renderSelected();
  } catch (e) {
    if (e.code === 404) { ui.selected = null; ui.selectedJob = null; renderSelected(); }
    else pollFailed(`GET /v1/jobs/${id}`, e);
  }
}

function renderSelected() {
  const j = ui.selectedJob;
  const detail = $('job-detail');
  detail.replaceChildren();
  if (!j) {
    $('job-title').textContent = '— select a job above';
    drawLoss([]);
    return;
  }
  $('job-title').textContent = `${j.name || ''} · ${shortId(j.job_id)}`;
  const s = j.spec || {};
  const items = [
    ['status', el('span', { class: `badge badge-${j.status}`, id: 'job-status' }, j.status)],
    ['model', `${s.arch || 'single'} ${s.model_size || '?'}${s.feedback ? ' with feedback' : ''}, ${s.system || '?'}, expert ${s.expert || '?'}`],
    ['data', `${s.num_samples ?? '?'} samples${s.tails > 0 ? ` + ${s.tails} tails each` : ''}, val split ${s.val_split ?? '?'}, seed ${s.seed ?? '?'}`],
    ['optimizer', `${s.epochs ?? '?'} epochs, batch ${s.batch_size ?? '?'}, lr ${s.lr ?? '?'} (${s.scheduler || '?'})`],
    ['objective', s.objective || 'imitation'],
    ['time', `started ${when(j.started_at)}, ran ${duration(j.started_at, j.finished_at)}`],
  ];
  const terms = lossTerms(j);
  if (terms) {
    items.push(['loss terms', el('span', { id: 'job-terms', dataset: { epoch: terms.epoch, train: JSON.stringify(terms.train), val: JSON.stringify(terms.val) } },
      `epoch ${terms.epoch} · train: ${termsText(terms.train)}` +
      (Object.keys(terms.val).length ? ` · validation: ${termsText(terms.val)}` : ''))]);
  }
  if (j.result) items.push(['result', `model "${j.result.model}" → ${j.result.checkpoint}`]);
  if (j.error) items.push(['error', el('span', { class: 'error-text' }, j.error)]);
  for (const [k, v] of items) detail.append(el('div', { class: 'kv' }, el('span', { class: 'k' }, k), el('span', { class: 'v' }, v)));
  drawLoss(j.history || []);
}

// The train and validation loss per epoch and, dashed, each term of the training loss (as
// training_curves.svg draws them); a term that is 0 throughout (its weight is 0) has no place
// on a log axis and is left out of the plot (the job card lists it).
function drawLoss(history) {
  const x = history.map((h) => h.epoch);
  const series = [{ label: 'train loss', x, y: history.map((h) => h.train_loss), color: COLORS[0] }];
  if (history.some((h) => h.val_loss != null)) {
    series.push({ label: 'validation loss', x, y: history.map((h) => (h.val_loss == null ? NaN : h.val_loss)), color: COLORS[1] });
  }
  const names = [...new Set(history.flatMap((h) => Object.keys(h.train_terms || {})))];
  names.forEach((name, k) => {
    const y = history.map((h) => (h.train_terms && h.train_terms[name] != null ? h.train_terms[name] : NaN));
    if (y.some((v) => v > 0)) series.push({ label: name, x, y, color: COLORS[(k + 2) % COLORS.length], dash: [6, 4], width: 1.5 });
  });
  TRCPlot.draw($('loss-plot'), {
    series: history.length ? series : [], logY: true, integerX: true, xLabel: 'epoch',
    yLabel: names.length ? 'loss and its terms (dashed)' : 'MSE loss',
    empty: ui.selectedJob ? 'no finished epoch yet' : 'select a job',
  });
}

async function cancelJob(id) {
  try {
    await api('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`);
  } catch (e) {
    showError(`POST /v1/jobs/${id}/cancel`, e);
  }
  pollJobs();
}

async function resumeJob(id) {
  try {
    await api('POST', `/v1/jobs/${encodeURIComponent(id)}/resume`);
    ui.selected = id;
  } catch (e) {
    showError(`POST /v1/jobs/${id}/resume`, e);
  }
  pollJobs();
}

async function deleteJob(id) {
  try {
    await api('DELETE', `/v1/jobs/${encodeURIComponent(id)}`);
    if (ui.selected === id) { ui.selected = null; ui.selectedJob = null; renderSelected(); }
  } catch (e) {
    showError(`DELETE /v1/jobs/${id}`, e);
  }
  pollJobs();
}

// ---------------------------------------------------------------- the catalogue and the training form

async function loadCatalog() {
  try {
    ui.catalog = await api('GET', '/v1/catalog');
    buildTrainForm();
    const polish = $('control-polish');
    polish.replaceChildren(el('option', { value: '' }, 'none'),
      ...ui.catalog.experts.filter((e) => e.polish).map((e) => el('option', { value: e.name }, e.name)));
    renderControl();
  } catch (e) {
    $('train-fields').replaceChildren(el('span', { class: 'error-text' }, 'the catalogue could not be loaded'));
    showError('GET /v1/catalog', e);
  }
}

// The options POST /v1/train accepts, in the order of the TrainSpec: the data's, then the training's.
function wireOptions() {
  return ui.catalog.option_sets.flatMap((set) => set.options.filter((o) => o.where.includes('wire')));
}

// The upper bound a job on this server accepts (job_maximum is inclusive).
function servedMax(o) {
  if (o.job_maximum != null) return { value: o.job_maximum, open: false };
  if (o.maximum != null) return { value: o.maximum, open: !!o.exclusive_maximum };
  return null;
}

function rangeText(o) {
  const max = servedMax(o);
  const lo = o.minimum != null ? `${o.exclusive_minimum ? '>' : '≥'} ${o.minimum}` : '';
  const hi = max ? `${max.open ? '<' : '≤'} ${max.value}` : '';
  return [lo, hi].filter(Boolean).join(', ');
}

function optionField(o) {
  let input;
  if (o.choices) {
    input = el('select', { name: o.name }, ...o.choices.map((c) => el('option', { value: c }, c)));
    if (o.default != null) input.value = o.default;
  } else if (o.type === 'boolean') {
    input = el('input', { name: o.name, type: 'checkbox' });
    input.checked = !!o.default;
  } else if (o.type === 'integer' || o.type === 'number') {
    input = el('input', { name: o.name, type: 'number', step: o.type === 'integer' ? '1' : 'any' });
    if (o.minimum != null) input.min = String(o.minimum);
    const max = servedMax(o);
    if (max) input.max = String(max.value);
    if (o.default != null) input.value = String(o.default);
  } else {
    input = el('input', { name: o.name, value: o.default == null ? '' : o.default });
  }
  input.dataset.option = o.name;
  const range = rangeText(o);
  const hint = [o.default_text ? `${o.default} = ${o.default_text}` : '', range].filter(Boolean).join('; ');
  return el('label', { title: `${o.help}${range ? ` (${range})` : ''}`, dataset: { option: o.name } },
    o.name.replace(/_/g, ' '), input, el('span', { class: 'hint' }, o.help), hint ? el('span', { class: 'hint' }, hint) : '');
}

function buildTrainForm() {
  const fields = wireOptions().map(optionField);
  $('train-fields').replaceChildren(...fields);
  const system = $('train-form').elements.namedItem('system');
  if (system) system.addEventListener('change', updateExperts);
  updateExperts();
}

// Only the experts that accept the chosen system are offered.
function updateExperts() {
  const form = $('train-form');
  const system = form.elements.namedItem('system');
  const expert = form.elements.namedItem('expert');
  if (!system || !expert) return;
  const keep = expert.value;
  const ok = ui.catalog.experts.filter((e) => e.accepts.includes(system.value)).map((e) => e.name);
  expert.replaceChildren(...ok.map((n) => el('option', { value: n }, n)));
  if (ok.includes(keep)) expert.value = keep;
}

// The form's own check, from the descriptors: one message naming the option, before any request.
function checkOption(o, input) {
  if (!(o.type === 'integer' || o.type === 'number')) return null;
  const v = Number(input.value);
  if (input.value.trim() === '' || !Number.isFinite(v)) return `${o.name} must be a number`;
  if (o.type === 'integer' && !Number.isInteger(v)) return `${o.name} must be an integer`;
  if (o.default_text && o.default != null && v === o.default) return null; // the automatic value
  const max = servedMax(o);
  const low = o.minimum != null && (o.exclusive_minimum ? v <= o.minimum : v < o.minimum);
  const high = max && (max.open ? v >= max.value : v > max.value);
  return low || high ? `${o.name} must be ${rangeText(o)}, got ${v}` : null;
}

async function submitTrain(ev) {
  ev.preventDefault();
  const form = ev.target;
  const spec = {};
  const name = form.elements.namedItem('name');
  if (name.value) spec.name = name.value;
  for (const input of form.elements) input.removeAttribute('aria-invalid');
  for (const o of ui.catalog ? wireOptions() : []) {
    const input = form.elements.namedItem(o.name);
    if (!input) continue;
    const problem = checkOption(o, input);
    if (problem) {
      input.setAttribute('aria-invalid', 'true');
      formMessage('train-msg', problem, 'bad');
      return;
    }
    if (o.type === 'boolean') spec[o.name] = input.checked;
    else if (o.type === 'integer' || o.type === 'number') spec[o.name] = Number(input.value);
    else spec[o.name] = input.value;
  }
  // not an option of the tables: without it a name already served is 409
  if (form.elements.namedItem('replace')?.checked) spec.replace = true;
  formMessage('train-msg', 'submitting…');
  try {
    const r = await api('POST', '/v1/train', spec);
    formMessage('train-msg', `job ${r.job_id} ${r.status}`, 'ok');
    ui.selected = r.job_id;
    pollJobs();
  } catch (e) {
    if (e.param && form.elements.namedItem(e.param)) form.elements.namedItem(e.param).setAttribute('aria-invalid', 'true');
    formMessage('train-msg', e.toString(), 'bad');
    showError('POST /v1/train', e);
  }
}

// ---------------------------------------------------------------- control

async function submitControl(ev) {
  ev.preventDefault();
  let body;
  try {
    body = { state: parseVector($('control-state').value, 'state'), target: parseVector($('control-target').value, 'target'), return: ['trajectory'] };
  } catch (e) {
    formMessage('control-msg', e.message, 'bad');
    return;
  }
  if ($('control-model').value) body.model = $('control-model').value;
  if ($('control-polish').value) {
    const iters = Number($('control-polish-iters').value);
    if (!Number.isInteger(iters) || iters < 1) {
      formMessage('control-msg', 'polish iterations must be a whole number ≥ 1', 'bad');
      return;
    }
    body.polish = { expert: $('control-polish').value, max_iters: iters };
  }
  const left = $('control-steps-left');
  if (!left.disabled && left.value.trim() !== '') {
    const v = Number(left.value), max = Number(left.max);
    if (!Number.isInteger(v) || v < 1 || (max && v > max)) {
      formMessage('control-msg', `steps left must be a whole number in 1..${max || '?'}`, 'bad');
      left.setAttribute('aria-invalid', 'true');
      return;
    }
    body.steps_left = v;
  }
  left.removeAttribute('aria-invalid');
  formMessage('control-msg', 'computing…');
  try {
    const r = await api('POST', '/v1/control', body);
    ui.lastControl = { request: body, response: r };
    formMessage('control-msg', `model ${r.model.name} answered in ${num(r.timing_ms)} ms`, 'ok');
    renderControl();
  } catch (e) {
    formMessage('control-msg', e.toString(), 'bad');
    showError('POST /v1/control', e);
  }
}

function renderControl() {
  if (!ui.lastControl) {
    TRCPlot.draw($('controls-plot'), { series: [], empty: 'ask for a control sequence' });
    TRCPlot.draw($('state-plot'), { series: [], empty: 'ask for a control sequence' });
    return;
  }
  const { request, response: r } = ui.lastControl;
  const info = ui.models.find((m) => m.name === r.model.name);
  const cfg = (info && info.config) || {};
  const system = (info && info.system) || cfg.system;
  const dt = cfg.dt > 0 ? cfg.dt : null;
  const T = r.controls.length;
  const m = T ? r.controls[0].length : 0;
  const s = r.final_state.length;
  // State and control labels from the catalogue's system table (x0, u0, ... when it has none).
  const sys = ui.catalog && ui.catalog.systems.find((x) => x.name === system);
  const names = Array.from({ length: s }, (_, i) => (sys && sys.state_names && sys.state_names[i]) || `x${i}`);
  const unames = Array.from({ length: m }, (_, j) => (sys && sys.control_names && sys.control_names[j]) || `u${j}`);
  const run = {
    request, r, cfg, T, m, s, names, unames,
    times: Array.from({ length: T + 1 }, (_, k) => (dt ? k * dt : k)),
    xLabel: dt ? 'time (s)' : 'step',
  };

  const summary = [
    ['final state', `[${r.final_state.map((v) => num(v, 4)).join(', ')}]`],
    ['final error', num(r.final_error, 3)],
    ['control cost Σu²', num(r.cost, 4)],
    ['model', `${r.model.name} @ ${(r.model.version || '').slice(0, 12)}`],
  ];
  if (request.steps_left) summary.push(['horizon', el('span', { id: 'control-horizon' }, `the last ${T} of ${cfg.T ?? '?'} steps`)]);
  if (r.polish) {
    const p = r.polish;
    summary.push(['polish', el('span', { id: 'polish-report', dataset: { iterations: p.iterations, before: p.cost_before, after: p.cost_after } },
      `${p.expert}: ${p.iterations} of ≤ ${p.max_iters} iterations${p.converged ? ' (converged)' : ''}, J ${num(p.cost_before, 4)} → ${num(p.cost_after, 4)} in ${num(p.ms)} ms`)]);
  }
  $('control-summary').replaceChildren(...summary.map(([k, v]) => el('div', { class: 'kv' }, el('span', { class: 'k' }, k), el('span', { class: 'v' }, v))));

  const view = SYSTEM_VIEWS[system] || timeView;
  const drawn = view(run);
  $('controls-caption').textContent = drawn.controlsCaption;
  $('state-caption').textContent = drawn.stateCaption;
  $('state-plot').dataset.view = drawn.name;
  $('controls-plot').dataset.view = drawn.name;
}

// The controls against time, one step series per control (zero-order hold).
function controlSeries(run) {
  const out = [];
  for (let j = 0; j < run.m; j++) {
    out.push({ label: run.m > 1 ? run.unames[j] : `${run.unames[j]} (control)`, x: run.times, y: run.r.controls.map((u) => u[j]), color: COLORS[j % COLORS.length], step: true });
  }
  return out;
}

function boundText(cfg) {
  return cfg.bound > 0 ? ` (bound ±${cfg.bound})` : '';
}

// Default view: controls and every state against time, with the target as dashed lines.
function timeView(run) {
  const { r, request, T, names, times } = run;
  TRCPlot.draw($('controls-plot'), { series: controlSeries(run), xLabel: run.xLabel, yLabel: `control${boundText(run.cfg)}` });
  const captions = { name: 'time', controlsCaption: 'controls u(t)', stateCaption: 'simulated state x(t)' };
  if (!r.trajectory) {
    TRCPlot.draw($('state-plot'), { series: [], empty: 'the server returned no trajectory' });
    return captions;
  }
  const xseries = [];
  for (let i = 0; i < run.s; i++) {
    const color = COLORS[(i + 2) % COLORS.length];
    xseries.push({ label: names[i], x: times, y: r.trajectory.map((x) => x[i]), color });
    xseries.push({ label: `target ${names[i]}`, x: [times[0], times[T]], y: [request.target[i], request.target[i]], color, dash: [6, 4], width: 1.5 });
  }
  TRCPlot.draw($('state-plot'), { series: xseries, xLabel: run.xLabel, yLabel: 'state' });
  return captions;
}

// A two-state system as a phase portrait: the second state against the first, from the start
// (a dot) to the end, with the target as a large dot.
function phaseView(run) {
  const { r, request, names } = run;
  TRCPlot.draw($('controls-plot'), { series: controlSeries(run), xLabel: run.xLabel, yLabel: `control${boundText(run.cfg)}` });
  const captions = { name: 'phase', controlsCaption: 'controls u(t)', stateCaption: `phase portrait: ${names[1]} against ${names[0]}` };
  if (!r.trajectory) {
    TRCPlot.draw($('state-plot'), { series: [], empty: 'the server returned no trajectory' });
    return captions;
  }
  const traj = r.trajectory;
  TRCPlot.draw($('state-plot'), {
    series: [
      { label: 'trajectory', x: traj.map((x) => x[0]), y: traj.map((x) => x[1]), color: COLORS[0] },
      { label: 'start', x: [traj[0][0]], y: [traj[0][1]], color: COLORS[2], radius: 4 },
      { label: 'target', x: [request.target[0]], y: [request.target[1]], color: COLORS[4], radius: 6 },
    ],
    xLabel: names[0], yLabel: names[1],
  });
  return captions;
}

// The rocket: altitude (the third state) against the horizontal distance from the target
// (first two states), and the thrust magnitude |T| beside its components. The mass (last state)
// is not a position and is left out.
function rocketView(run) {
  const { r, request, names, unames, times, cfg } = run;
  const mag = r.controls.map((u) => Math.hypot(...u));
  const useries = [{ label: '|thrust|', x: times, y: mag, color: COLORS[4], step: true, width: 2.5 }];
  for (const sr of controlSeries(run)) useries.push(Object.assign(sr, { width: 1, markers: false }));
  TRCPlot.draw($('controls-plot'), { series: useries, xLabel: run.xLabel, yLabel: `thrust (N)${boundText(cfg)}` });
  const captions = {
    name: 'rocket',
    controlsCaption: `thrust magnitude |(${unames.join(', ')})| and components`,
    stateCaption: `altitude ${names[2]} against downrange √(${names[0]}² + ${names[1]}²)`,
  };
  if (!r.trajectory) {
    TRCPlot.draw($('state-plot'), { series: [], empty: 'the server returned no trajectory' });
    return captions;
  }
  const down = (x) => Math.hypot(x[0] - request.target[0], x[1] - request.target[1]);
  const traj = r.trajectory;
  TRCPlot.draw($('state-plot'), {
    series: [
      { label: 'trajectory', x: traj.map(down), y: traj.map((x) => x[2]), color: COLORS[0] },
      { label: 'start', x: [down(traj[0])], y: [traj[0][2]], color: COLORS[2], radius: 4 },
      { label: 'target', x: [0], y: [request.target[2]], color: COLORS[4], radius: 6 },
    ],
    xLabel: `downrange (${names[0]}, ${names[1]}) to the target, m`, yLabel: `altitude ${names[2]}, m`,
  });
  return captions;
}

// How a system's runs are drawn: one line per system, the time view for the others.
const SYSTEM_VIEWS = {
  van_der_pol: phaseView,
  rocket_landing: rocketView,
};

// ---------------------------------------------------------------- start

function start() {
  const token = $('token');
  token.value = ui.token;
  token.addEventListener('change', () => {
    ui.token = token.value.trim();
    if (ui.token) localStorage.setItem('trc_token', ui.token);
    else localStorage.removeItem('trc_token');
  });
  $('errors-clear').addEventListener('click', () => { $('error-list').replaceChildren(); $('errors').hidden = true; });
  $('train-form').addEventListener('submit', submitTrain);
  $('control-form').addEventListener('submit', submitControl);
  $('control-model').addEventListener('change', updateStepsLeft);
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { renderControl(); renderSelected(); }, 100);
  });
  renderControl();
  renderSelected();
  loadCatalog();
  refreshModels().then(pollJobs);
}

document.addEventListener('DOMContentLoaded', start);
