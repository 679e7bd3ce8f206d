// Drives the trcd dashboard in Debian's headless Chromium (playwright-core, no downloaded
// browser) against a live trcd at TRC_URL: the page loads and lists models, a control
// sequence is asked for and plotted, a server error shows in the page, a small training job
// runs to `succeeded` with its loss curve drawn and its model listed, and a job is cancelled
// from the page. The training form, its expert choices and the state labels come from
// GET /v1/catalog: every wire option appears with its default, range and help, an out-of-range
// value is refused by the form with the catalogue's limit, a cross-field one by the server.
// The models table shows each model's arch and saved settings (feedback, normalised); a Van der Pol run is drawn as a phase portrait
// (x1 against x2, with the target) and a rocket_landing run as altitude against downrange with
// the thrust magnitude, labelled from the catalogue (tiny ilqr jobs train those two models). A job
// with a multi-term objective (mixed) lists its loss terms and plots them dashed; a model trained
// with tails is asked for the last steps of its horizon (steps left). Screenshots go to ARTIFACTS (default tests/browser/artifacts). Prints one line
// per test and, last, `browser: N passed, M failed`; exits 1 if any failed.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const URL = (process.env.TRC_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const HERE = dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = process.env.ARTIFACTS || join(HERE, 'artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TOKEN = process.env.TRC_API_TOKEN || '';
const RUN = Date.now().toString(36);

mkdirSync(ARTIFACTS, { recursive: true });
const results = [];

async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([name, true]);
    console.log(`ok    ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL  ${name}: ${e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e}`);
  }
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

// The API directly (setup only: what the page does is tested through the page).
async function api(method, path, body) {
  const headers = { 'Content-Type': 'application/json' };
  if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
  const r = await fetch(URL + path, { method, headers, body: body && JSON.stringify(body) });
  const data = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(data)}`);
  return data;
}

// Number of canvas pixels that are clearly coloured (a drawn curve), not white/grey chrome.
async function colouredPixels(page, selector) {
  return page.$eval(selector, (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      const max = Math.max(d[i], d[i + 1], d[i + 2]), min = Math.min(d[i], d[i + 1], d[i + 2]);
      if (d[i + 3] > 0 && max - min > 80) n++;
    }
    return n;
  });
}

// Upper bounds for what the page shows after a request or a poll, and for a small training job;
// generous so that a slow or loaded machine passes too (nothing here races).
const UI_WAIT = 60000;
const JOB_WAIT = 1200000;

const points = (page, selector) => page.$eval(selector, (c) => Number(c.dataset.points || 0));

async function main() {
  // A default model first: trained by trcd itself, so the page has something to serve; and a
  // tiny Van der Pol and rocket_landing model (ilqr data) for their views.
  const models = await api('GET', '/v1/models');
  const wanted = [
    { name: 'default', model_size: 'small', num_samples: 3000, epochs: 40, seed: 1 },
    { name: 'vdp', system: 'van_der_pol', expert: 'ilqr', model_size: 'small', num_samples: 64, epochs: 1, batch_size: 16, seed: 1 },
    { name: 'rocket', system: 'rocket_landing', expert: 'ilqr', model_size: 'small', num_samples: 16, epochs: 1, batch_size: 8, seed: 1 },
    { name: 'fb', arch: 'two_level', feedback: true, model_size: 'small', num_samples: 64, epochs: 1, batch_size: 16, seed: 1 },
    { name: 'tails', tails: 2, model_size: 'small', num_samples: 64, epochs: 1, batch_size: 16, seed: 1 },
  ].filter((spec) => !models.models.some((m) => m.name === spec.name));
  const jobs = [];
  for (const spec of wanted) jobs.push([spec.name, (await api('POST', '/v1/train', spec)).job_id]);
  for (const [model, jobId] of jobs) {
    for (let i = 0; ; i++) {
      const job = await api('GET', `/v1/jobs/${jobId}`);
      if (job.terminal) {
        if (job.status !== 'succeeded') throw new Error(`${model} model job ${job.status}: ${job.error}`);
        break;
      }
      // a bound, not a speed: a loaded or slow machine only takes longer
      if (i > 6000) throw new Error(`${model} model job did not finish in 20 minutes`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  const profile = mkdtempSync(join(tmpdir(), 'trc-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 1000 },
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(UI_WAIT);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  // Nothing may be fetched from outside the server: the page works offline.
  const outside = [];
  page.on('request', (r) => { if (!r.url().startsWith(URL) && !r.url().startsWith('data:')) outside.push(r.url()); });
  const name = `browser-${RUN}`;
  if (TOKEN) await page.addInitScript((t) => localStorage.setItem('trc_token', t), TOKEN);

  try {
    await test('page loads, server ready, default model listed', async () => {
      await page.goto(URL + '/', { waitUntil: 'load' });
      check((await page.title()).includes('TRC'), `title is "${await page.title()}"`);
      await page.waitForSelector('#models-table tr[data-model="default"]', { timeout: UI_WAIT });
      await page.waitForFunction(() => document.getElementById('server-status').textContent === 'ready', null, { timeout: UI_WAIT });
      const opts = await page.$$eval('#control-model option', (o) => o.map((x) => x.value));
      check(opts.includes('default'), `control model choices: ${opts}`);
    });

    await test('control sequence is computed and plotted', async () => {
      await page.fill('#control-state', '1.5, -0.5');
      await page.fill('#control-target', '0, 0');
      await page.click('#control-form button[type=submit]');
      await page.waitForFunction(() => Number(document.getElementById('state-plot').dataset.points) > 0, null, { timeout: UI_WAIT });
      check(await points(page, '#controls-plot') >= 15, `controls plot has ${await points(page, '#controls-plot')} points`);
      check(await points(page, '#state-plot') >= 2 * 16, `state plot has ${await points(page, '#state-plot')} points`);
      check(await colouredPixels(page, '#controls-plot') > 200, 'controls plot shows no curve');
      check(await colouredPixels(page, '#state-plot') > 200, 'state plot shows no curve');
      const summary = await page.textContent('#control-summary');
      check(/final error/.test(summary) && /cost/.test(summary), `summary: ${summary}`);
      await page.locator('#control-card').screenshot({ path: join(ARTIFACTS, 'control.png') });
    });

    await test('a server error appears in the page', async () => {
      await page.fill('#control-state', '1, 2, 3'); // the model's state has 2 values
      await page.fill('#control-target', '0, 0, 0');
      await page.click('#control-form button[type=submit]');
      await page.waitForSelector('#errors:not([hidden]) #error-list li', { timeout: UI_WAIT });
      const text = await page.textContent('#error-list li');
      check(/400/.test(text) && /invalid_request/.test(text) && /state/.test(text), `error entry: ${text}`);
      const msg = await page.$eval('#control-msg', (e) => [e.className, e.textContent]);
      check(msg[0].includes('bad') && /state/.test(msg[1]), `form message: ${msg}`);
      check(await points(page, '#state-plot') > 0, 'the last good plot was wiped by the error');
      await page.screenshot({ path: join(ARTIFACTS, 'error.png') });
      await page.fill('#control-state', '1.5, -0.5');
      await page.fill('#control-target', '0, 0');
    });

    await test('the training form is built from /v1/catalog', async () => {
      const cat = await api('GET', '/v1/catalog');
      const wire = cat.option_sets.flatMap((s) => s.options.filter((o) => o.where.includes('wire')));
      check(wire.length >= 15 && wire.some((o) => o.name === 'K'), `wire options: ${wire.map((o) => o.name)}`);
      await page.waitForSelector('#train-form [name=K]', { timeout: UI_WAIT });
      for (const o of wire) {
        const f = await page.$eval(`#train-form [name="${o.name}"]`, (e) => ({
          tag: e.tagName, value: e.value, checked: e.checked, min: e.min, max: e.max, step: e.step,
          options: e.tagName === 'SELECT' ? [...e.options].map((x) => x.value) : null,
          title: e.closest('label').title,
        }));
        check(f.title.includes(o.help), `${o.name}: title "${f.title}" lacks the help "${o.help}"`);
        if (o.choices && o.name !== 'expert') {
          check(JSON.stringify(f.options) === JSON.stringify(o.choices), `${o.name} choices ${f.options}`);
        }
        if (o.type === 'boolean') check(f.checked === Boolean(o.default), `${o.name}: checked ${f.checked}, default ${o.default}`);
        else if (o.default != null) check(f.value === String(o.default), `${o.name}: value ${f.value}, default ${o.default}`);
        if (o.type === 'integer' || o.type === 'number') {
          const max = o.job_maximum != null ? o.job_maximum : o.maximum;
          if (max != null) check(Number(f.max) === max, `${o.name}: max ${f.max}, catalogue ${max}`);
          if (o.minimum != null) check(Number(f.min) === o.minimum, `${o.name}: min ${f.min}`);
          check(f.step === (o.type === 'integer' ? '1' : 'any'), `${o.name}: step ${f.step}`);
        }
      }
      // The experts offered are those that accept the chosen system.
      const system = await page.$eval('#train-form [name=system]', (e) => e.value);
      const experts = await page.$$eval('#train-form [name=expert] option', (o) => o.map((x) => x.value));
      const accept = cat.experts.filter((e) => e.accepts.includes(system)).map((e) => e.name);
      check(JSON.stringify(experts) === JSON.stringify(accept), `experts ${experts}, catalogue ${accept}`);

      // Past the catalogue's limit: the form refuses it, naming the option, and sends nothing.
      const epochs = wire.find((o) => o.name === 'epochs');
      const over = (epochs.job_maximum != null ? epochs.job_maximum : epochs.maximum) + 1;
      const posts = [];
      const onReq = (r) => { if (r.method() === 'POST' && r.url().endsWith('/v1/train')) posts.push(r.url()); };
      page.on('request', onReq);
      await page.fill('#train-form [name=epochs]', String(over));
      await page.click('#train-form button[type=submit]');
      const msg = await page.$eval('#train-msg', (e) => [e.className, e.textContent]);
      check(msg[0].includes('bad') && msg[1].includes('epochs') && msg[1].includes(String(over - 1)), `form message: ${msg}`);
      check(await page.$eval('#train-form [name=epochs]', (e) => e.getAttribute('aria-invalid')) === 'true', 'epochs not marked');
      check(posts.length === 0, 'an out-of-range form was sent');
      await page.fill('#train-form [name=epochs]', String(epochs.default));

      // Two options that are fine alone but not together: the server's error, in the form.
      await page.fill('#train-form [name=lr]', '0.001');
      await page.fill('#train-form [name=lr_min]', '0.01');
      await page.click('#train-form button[type=submit]');
      await page.waitForFunction(() => /lr_min/.test(document.getElementById('train-msg').textContent), null, { timeout: UI_WAIT });
      const server = await page.textContent('#train-msg');
      check(/400/.test(server) && /lr_min must be in \[0, lr\]/.test(server), `server message: ${server}`);
      check(posts.length === 1, `${posts.length} POST /v1/train sent`);
      page.off('request', onReq);
      await page.locator('#train-card').screenshot({ path: join(ARTIFACTS, 'train-form.png') });
      await page.reload({ waitUntil: 'load' });
      await page.waitForSelector('#train-form [name=K]', { timeout: UI_WAIT });
      await page.waitForSelector('#models-table tr[data-model="default"]', { timeout: UI_WAIT });
    });

    await test('state labels of the plot come from the catalogue', async () => {
      const cat = await api('GET', '/v1/catalog');
      const sys = cat.systems.find((x) => x.name === 'double_integrator');
      const want = sys.state_names || sys.defaults && [...Array(sys.state_dim).keys()].map((i) => `x${i}`);
      await page.click('#control-form button[type=submit]');
      await page.waitForFunction(() => Number(document.getElementById('state-plot').dataset.points) > 0, null, { timeout: UI_WAIT });
      const labels = JSON.parse(await page.$eval('#state-plot', (c) => c.dataset.labels));
      for (const name of want) check(labels.includes(name), `state plot labels ${labels} lack ${name}`);
    });

    await test('the models table shows each model\'s arch and system', async () => {
      const served = (await api('GET', '/v1/models')).models;
      check(served.every((m) => typeof m.arch === 'string' && m.arch), `/v1/models arch: ${JSON.stringify(served.map((m) => m.arch))}`);
      const head = await page.$$eval('#models-table thead th', (t) => t.map((x) => x.textContent));
      check(head.includes('arch'), `models table header ${head}`);
      // ... and its saved settings: fb has trajectory feedback, the rocket is normalised (auto)
      check(served.find((x) => x.name === 'fb').config.feedback === true, 'fb has no feedback');
      check(served.find((x) => x.name === 'rocket').config.normalised === true, 'rocket is not normalised');
      for (const name of ['default', 'vdp', 'rocket', 'fb']) {
        await page.waitForSelector(`#models-table tr[data-model="${name}"]`, { timeout: UI_WAIT });
        const m = served.find((x) => x.name === name);
        const arch = await page.$eval(`#models-table tr[data-model="${name}"] td.arch`, (e) => e.textContent);
        check(arch === m.arch, `${name}: arch cell "${arch}", server "${m.arch}"`);
        const settings = await page.$eval(`#models-table tr[data-model="${name}"] td.settings`, (e) => e.textContent);
        const want = [m.config.feedback ? 'feedback' : '', m.config.normalised ? 'normalised' : ''].filter(Boolean).join(', ') || '–';
        check(settings === want, `${name}: settings cell "${settings}", want "${want}"`);
        const row = await page.textContent(`#models-table tr[data-model="${name}"]`);
        check(row.includes(m.system), `${name}: row "${row}" lacks ${m.system}`);
      }
      // The training form offers the catalogue's systems, experts, architectures (and objectives
      // when the catalogue has that option): generated from the descriptors, nothing spelled here.
      const cat = await api('GET', '/v1/catalog');
      const wire = cat.option_sets.flatMap((x) => x.options.filter((o) => o.where.includes('wire')));
      for (const key of ['system', 'expert', 'arch', 'objective']) {
        const o = wire.find((x) => x.name === key);
        if (!o) { check(key === 'objective', `the catalogue has no wire option ${key}`); continue; }
        check(await page.$(`#train-form [name="${key}"]`) !== null, `the form lacks ${key}`);
      }
      const archs = await page.$$eval('#train-form [name=arch] option', (o) => o.map((x) => x.value));
      check(JSON.stringify(archs) === JSON.stringify(cat.architectures.map((a) => a.name)), `arch choices ${archs}`);
      await page.locator('#models-card').screenshot({ path: join(ARTIFACTS, 'models.png') });
    });

    await test('a Van der Pol run is drawn as a phase portrait with the target', async () => {
      const cat = await api('GET', '/v1/catalog');
      const names = cat.systems.find((x) => x.name === 'van_der_pol').state_names;
      await page.selectOption('#control-model', 'vdp');
      await page.fill('#control-state', '1.5, -0.5');
      await page.fill('#control-target', '0.25, 0');
      await page.click('#control-form button[type=submit]');
      await page.waitForFunction(() => document.getElementById('state-plot').dataset.view === 'phase' &&
        Number(document.getElementById('state-plot').dataset.points) > 0, null, { timeout: UI_WAIT });
      const plot = await page.$eval('#state-plot', (c) => ({ ...c.dataset }));
      const labels = JSON.parse(plot.labels);
      check(labels.includes('trajectory') && labels.includes('target'), `phase labels ${labels}`);
      check(plot.xLabel === names[0] && plot.yLabel === names[1], `axes ${plot.xLabel} / ${plot.yLabel}, catalogue ${names}`);
      // T+1 trajectory points, the start and the target
      const T = (await api('GET', '/v1/models/vdp')).config.T;
      check(Number(plot.points) === T + 3, `phase plot has ${plot.points} points, want ${T + 3}`);
      check((await page.textContent('#state-caption')).includes('phase portrait'), 'caption');
      check(await colouredPixels(page, '#state-plot') > 200, 'phase portrait shows no curve');
      check(await page.$('#polish-report') === null, 'a polish report without polish');
      await page.locator('#control-card').screenshot({ path: join(ARTIFACTS, 'vdp-phase.png') });

      // Polished by an expert the catalogue says can polish: the report shows J falling.
      const polishers = cat.experts.filter((e) => e.polish).map((e) => e.name);
      const offered = await page.$$eval('#control-polish option', (o) => o.map((x) => x.value).filter(Boolean));
      check(JSON.stringify(offered) === JSON.stringify(polishers), `polish choices ${offered}, catalogue ${polishers}`);
      await page.selectOption('#control-polish', 'ilqr');
      await page.fill('#control-polish-iters', '5');
      await page.click('#control-form button[type=submit]');
      await page.waitForSelector('#polish-report', { timeout: UI_WAIT });
      const rep = await page.$eval('#polish-report', (e) => ({ ...e.dataset, text: e.textContent }));
      check(Number(rep.iterations) >= 1 && Number(rep.iterations) <= 5, `polish iterations ${rep.iterations}`);
      check(Number(rep.after) <= Number(rep.before), `polish J ${rep.before} -> ${rep.after}`);
      check(/ilqr/.test(rep.text), `polish report: ${rep.text}`);
      await page.locator('#control-card').screenshot({ path: join(ARTIFACTS, 'vdp-polish.png') });
      await page.selectOption('#control-polish', '');
    });

    await test('a rocket_landing run is drawn as altitude vs downrange with the thrust magnitude', async () => {
      const cat = await api('GET', '/v1/catalog');
      const sys = cat.systems.find((x) => x.name === 'rocket_landing');
      await page.selectOption('#control-model', 'rocket');
      await page.fill('#control-state', '1200, -800, 2500, -10, 5, -40, 2500');
      await page.fill('#control-target', '0, 0, 0, 0, 0, 0, 0');
      await page.click('#control-form button[type=submit]');
      await page.waitForFunction(() => document.getElementById('state-plot').dataset.view === 'rocket' &&
        Number(document.getElementById('state-plot').dataset.points) > 0, null, { timeout: UI_WAIT });
      const plot = await page.$eval('#state-plot', (c) => ({ ...c.dataset }));
      check(JSON.parse(plot.labels).includes('target'), `rocket labels ${plot.labels}`);
      check(plot.yLabel.includes(sys.state_names[2]) && /downrange/.test(plot.xLabel), `axes ${plot.xLabel} / ${plot.yLabel}`);
      const T = (await api('GET', '/v1/models/rocket')).config.T;
      check(Number(plot.points) === T + 3, `rocket plot has ${plot.points} points, want ${T + 3}`);
      const thrust = JSON.parse(await page.$eval('#controls-plot', (c) => c.dataset.labels));
      check(thrust[0] === '|thrust|', `controls plot labels ${thrust}`);
      for (const u of sys.control_names) check(thrust.includes(u), `controls plot labels ${thrust} lack ${u}`);
      check(await colouredPixels(page, '#state-plot') > 200, 'rocket plot shows no curve');
      check(await colouredPixels(page, '#controls-plot') > 200, 'thrust plot shows no curve');
      await page.locator('#control-card').screenshot({ path: join(ARTIFACTS, 'rocket.png') });
      // back to the default model for the tests that follow
      await page.selectOption('#control-model', 'default');
      await page.fill('#control-state', '1.5, -0.5');
      await page.fill('#control-target', '0, 0');
    });

    await test('steps left: a model trained with tails plans the last steps only', async () => {
      const T = (await api('GET', '/v1/models/tails')).config.T;
      check((await api('GET', '/v1/models/tails')).config.time_left === true, 'tails model has no time_left');
      await page.selectOption('#control-model', 'default');
      check(await page.$eval('#control-steps-left', (e) => e.disabled), 'steps left enabled for a model without tails');
      await page.selectOption('#control-model', 'tails');
      check(!(await page.$eval('#control-steps-left', (e) => e.disabled)), 'steps left disabled for the tails model');
      check(await page.$eval('#control-steps-left', (e) => Number(e.max)) === T, 'steps left max is not T');
      await page.fill('#control-state', '1.5, -0.5');
      await page.fill('#control-target', '0, 0');
      await page.fill('#control-steps-left', '5');
      await page.click('#control-form button[type=submit]');
      await page.waitForSelector('#control-horizon', { timeout: UI_WAIT });
      check((await page.textContent('#control-horizon')) === `the last 5 of ${T} steps`, `horizon: ${await page.textContent('#control-horizon')}`);
      check(await points(page, '#controls-plot') === 5, `controls plot has ${await points(page, '#controls-plot')} points`);
      // 6 states of the trajectory and the dashed target (2 points), for each of the 2 states
      check(await points(page, '#state-plot') === 2 * (6 + 2), `state plot has ${await points(page, '#state-plot')} points`);
      // Past the horizon: the form refuses it and sends nothing.
      const posts = [];
      const onReq = (r) => { if (r.method() === 'POST' && r.url().endsWith('/v1/control')) posts.push(r.url()); };
      page.on('request', onReq);
      await page.fill('#control-steps-left', String(T + 1));
      await page.click('#control-form button[type=submit]');
      const msg = await page.$eval('#control-msg', (e) => [e.className, e.textContent]);
      check(msg[0].includes('bad') && msg[1].includes(`1..${T}`), `form message: ${msg}`);
      check(posts.length === 0, 'a steps left past the horizon was sent');
      page.off('request', onReq);
      await page.fill('#control-steps-left', '');
      await page.selectOption('#control-model', 'default');
      check(await page.$eval('#control-steps-left', (e) => e.disabled && e.value === ''), 'steps left kept for the default model');
    });

    await test('a small training job reaches succeeded with a loss curve', async () => {
      const form = page.locator('#train-form');
      await form.locator('[name=name]').fill(name);
      await form.locator('[name=model_size]').selectOption('small');
      await form.locator('[name=num_samples]').fill('200');
      await form.locator('[name=epochs]').fill('3');
      await form.locator('[name=val_split]').fill('0.2');
      await form.locator('button[type=submit]').click();
      await page.waitForFunction(() => /queued|running/.test(document.getElementById('train-msg').textContent), null, { timeout: UI_WAIT });
      const row = page.locator(`#jobs-table tr.job:has(td:text-is("${name}"))`);
      await row.waitFor({ timeout: UI_WAIT });
      await page.waitForSelector(`#jobs-table tr.job[data-status="succeeded"]:has(td:text-is("${name}"))`, { timeout: JOB_WAIT });
      // The submitted job is the one shown, with one point per epoch for train and validation.
      await page.waitForFunction(() => document.getElementById('job-status') &&
        document.getElementById('job-status').textContent === 'succeeded' &&
        Number(document.getElementById('loss-plot').dataset.points) >= 6, null, { timeout: UI_WAIT });
      check((await page.textContent('#job-title')).includes(name), `job card shows ${await page.textContent('#job-title')}`);
      check(await colouredPixels(page, '#loss-plot') > 100, 'loss plot shows no curve');
      const width = await row.locator('.progress .fill').evaluate((e) => e.style.width);
      check(parseFloat(width) === 100, `progress bar of a succeeded job at ${width}`);
      // The job published its model: the page lists it and offers it for control.
      await page.waitForSelector(`#models-table tr[data-model="${name}"]`, { timeout: UI_WAIT });
      await page.locator('#job-card').screenshot({ path: join(ARTIFACTS, 'job.png') });
    });

    await test('a job with a multi-term objective shows its loss terms, listed and plotted', async () => {
      const termsName = `terms-${RUN}`;
      const form = page.locator('#train-form');
      await form.locator('[name=name]').fill(termsName);
      await form.locator('[name=model_size]').selectOption('small');
      await form.locator('[name=num_samples]').fill('200');
      await form.locator('[name=epochs]').fill('3');
      await form.locator('[name=val_split]').fill('0.2');
      await form.locator('[name=objective]').selectOption('mixed');
      await form.locator('[name=state_weight]').fill('0.1');
      await form.locator('[name=control_weight]').fill('0'); // a term that stays 0: listed, not plotted
      await form.locator('button[type=submit]').click();
      const sel = `#jobs-table tr.job[data-status="succeeded"]:has(td:text-is("${termsName}"))`;
      await page.waitForSelector(sel, { timeout: JOB_WAIT });
      await page.click(sel);
      await page.waitForFunction((n) => document.getElementById('job-title').textContent.includes(n) &&
        document.getElementById('job-terms') && document.getElementById('job-terms').dataset.epoch === '3', termsName, { timeout: UI_WAIT });
      // What the card says is the server's last history row, term by term.
      const jobs = (await api('GET', '/v1/jobs')).jobs;
      const job = await api('GET', `/v1/jobs/${jobs.find((j) => j.name === termsName).job_id}`);
      const last = job.history[job.history.length - 1];
      const names = ['imitation', 'terminal', 'state', 'control'];
      check(JSON.stringify(Object.keys(last.train_terms).sort()) === JSON.stringify([...names].sort()), `server terms ${JSON.stringify(last.train_terms)}`);
      const shown = await page.$eval('#job-terms', (e) => ({ train: JSON.parse(e.dataset.train), val: JSON.parse(e.dataset.val), text: e.textContent }));
      check(JSON.stringify(shown.train) === JSON.stringify(last.train_terms), `card train terms ${JSON.stringify(shown.train)}`);
      check(JSON.stringify(shown.val) === JSON.stringify(last.val_terms), `card val terms ${JSON.stringify(shown.val)}`);
      for (const n of names) check(shown.text.includes(`${n} ${last.train_terms[n].toExponential(2)}`), `card text "${shown.text}" lacks ${n}`);
      check(/validation:/.test(shown.text), `card text "${shown.text}"`);
      const detail = await page.textContent('#job-detail');
      check(detail.includes('mixed') && detail.includes('single small, double_integrator'), `the card does not name the objective and arch: ${detail}`);
      // The plot: train and validation loss, and dashed the terms that are not 0 throughout.
      const plot = await page.$eval('#loss-plot', (c) => ({ ...c.dataset }));
      const labels = JSON.parse(plot.labels);
      const drawn = names.filter((n) => job.history.some((h) => h.train_terms[n] > 0));
      check(drawn.includes('imitation') && drawn.includes('terminal') && !drawn.includes('control'), `positive terms ${drawn}`);
      check(JSON.stringify(labels) === JSON.stringify(['train loss', 'validation loss', ...drawn]), `loss plot labels ${labels}`);
      check(Number(plot.points) === 3 * (2 + drawn.length), `loss plot has ${plot.points} points`);
      check(/terms/.test(plot.yLabel), `y label ${plot.yLabel}`);
      // The jobs table's loss cells carry the terms as their tooltip.
      const tip = await page.$eval(`${sel} td.num`, (e) => e.title);
      check(names.every((n) => tip.includes(n)), `train loss tooltip "${tip}"`);
      await page.locator('#job-card').screenshot({ path: join(ARTIFACTS, 'job-terms.png') });
      await form.locator('[name=objective]').selectOption('imitation');
      await form.locator('[name=state_weight]').fill('0');
      await form.locator('[name=control_weight]').fill('0');
    });

    await test('a running job is cancelled, resumed and cancelled again from the page', async () => {
      const { job_id } = await api('POST', '/v1/train', { name: `cancel-${RUN}`, model_size: 'small', num_samples: 2000, epochs: 500 });
      const sel = `#jobs-table tr.job[data-job-id="${job_id}"]`;
      // Past its first epoch, so it has saved state to resume from.
      await page.waitForFunction((s) => {
        const row = document.querySelector(s);
        return row && row.dataset.status === 'running' && /epoch [1-9]/.test(row.textContent);
      }, sel, { timeout: UI_WAIT });
      await page.click(`${sel} button.danger`);
      await page.waitForSelector(`${sel}[data-status="cancelled"]`, { timeout: UI_WAIT });
      await page.click(`${sel} button:text-is("resume")`);
      await page.waitForSelector(`${sel}[data-status="running"], ${sel}[data-status="queued"]`, { timeout: UI_WAIT });
      await page.click(`${sel} button.danger`);
      await page.waitForSelector(`${sel}[data-status="cancelled"]`, { timeout: UI_WAIT });
    });

    await test('the page fetched nothing from outside the server and threw nothing', async () => {
      check(outside.length === 0, `outside requests: ${outside.join(', ')}`);
      check(pageErrors.length === 0, `page errors: ${pageErrors.join(' | ')}`);
    });
  } finally {
    // The whole page last, with the longest finished job (the default model's) selected.
    const row = page.locator('#jobs-table tr.job[data-status="succeeded"]:has(td:text-is("default"))');
    if (await row.count()) await row.first().click().catch(() => {});
    await page.click('#control-form button[type=submit]').catch(() => {});
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true }).catch(() => {});
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

let crashed = null;
try {
  await main();
} catch (e) {
  crashed = e;
  console.log(`FAIL  setup: ${e && e.message}`);
}
const passed = results.filter((r) => r[1]).length;
const failed = results.length - passed + (crashed ? 1 : 0);
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
