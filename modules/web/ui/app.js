/*
 * app.js - Trireme's dashboard: sign-in, overview, jobs, job detail and
 * schedules over the /v1 API, with hash routing (#/overview, #/jobs,
 * #/jobs/<id>, #/schedules).
 *
 * Served by the binary under a strict Content-Security-Policy (ui.c):
 * nothing inline, no other origin. Everything is built with DOM calls and
 * textContent, never innerHTML: payloads, results and errors are anyone's
 * data. The credential lives in sessionStorage only (gone with the tab)
 * and goes out as Authorization: Bearer on every call; what the page
 * offers follows from GET /v1/me (the credential's scopes), and the server
 * checks every call again anyway.
 */
'use strict';

(function () {
  const TOKEN_KEY = 'trireme.credential';
  const STATUSES = ['pending', 'running', 'succeeded', 'failed', 'dead', 'cancelled'];
  const OVERVIEW_EVERY_MS = 2000;
  const JOB_EVERY_MS = 1000;
  const LIVE_RETRY_MS = 2000; /* a live list's stream ended: resume after this long */

  /* The page's whole state: one object, reset on sign-out. `view` counts
   * renders so a poll or an answer of a page left behind does nothing. */
  const state = { scopes: [], view: 0, timer: 0, stream: null };

  /* --- DOM helpers ------------------------------------------------------ */

  /* el('td', {class: 'n', id: 'x'}, child, 'text', ...): children are
   * nodes or strings (as text nodes), null skipped. */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function $(id) {
    return document.getElementById(id);
  }

  function json(v) {
    return v === null || v === undefined ? '' : JSON.stringify(v, null, 2);
  }

  function text(v) {
    return v === null || v === undefined ? '-' : String(v);
  }

  /* --- errors ----------------------------------------------------------- */

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /* An API answer's error shown above the page, as the server said it. */
  function showError(err) {
    const box = $('error');
    if (err instanceof ApiError) {
      box.textContent = `${err.status} ${err.code}: ${err.message}`;
    } else {
      box.textContent = `request failed: ${err && err.message ? err.message : err}`;
    }
    box.hidden = false;
  }

  function clearError() {
    const box = $('error');
    box.textContent = '';
    box.hidden = true;
  }

  /* --- the API ---------------------------------------------------------- */

  function credential() {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  }

  /* One /v1 call; resolves to the parsed JSON answer (null without a
   * body), rejects with an ApiError carrying the server's error and
   * message. */
  async function api(method, path, body) {
    const headers = { Authorization: 'Bearer ' + credential() };
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    const raw = await r.text();
    let data = null;
    if (raw) {
      try {
        data = JSON.parse(raw);
      } catch (e) {
        data = null;
      }
    }
    if (!r.ok) {
      const code = data && data.error ? data.error : 'http_' + r.status;
      const msg = data && data.message ? data.message : raw || r.statusText;
      throw new ApiError(r.status, code, msg);
    }
    return data;
  }

  function can(scope) {
    return state.scopes.includes('admin') || state.scopes.includes(scope);
  }

  /* --- routing ---------------------------------------------------------- */

  /* "#/jobs/12?status=dead" -> {parts: ['jobs', '12'], query} */
  function route() {
    const h = location.hash.replace(/^#\/?/, '');
    const q = h.indexOf('?');
    const path = q < 0 ? h : h.slice(0, q);
    return {
      parts: path.split('/').filter(Boolean).map(decodeURIComponent),
      query: new URLSearchParams(q < 0 ? '' : h.slice(q + 1)),
    };
  }

  function stopPolling() {
    clearTimeout(state.timer);
    state.timer = 0;
    if (state.stream) state.stream.abort();
    state.stream = null;
  }

  /* Follow an event stream (GET /v1/jobs/{id}/events, GET /v1/events),
   * read with fetch (an EventSource cannot send the Authorization header):
   * onJob(job) for each `job` event, onJob(null) for `reset` (the stream
   * could not resume: reload). lastId is sent as Last-Event-ID. Resolves
   * with the last event id when the stream ends (the job finished, the
   * server drained, or the view changed); rejects with an ApiError when
   * the server refuses it, or on a network error. */
  async function follow(view, path, onJob, lastId) {
    const ctl = new AbortController();
    state.stream = ctl;
    const headers = { Authorization: 'Bearer ' + credential(), Accept: 'text/event-stream' };
    if (lastId) headers['Last-Event-ID'] = lastId;
    const r = await fetch(path, { headers, cache: 'no-store', signal: ctl.signal });
    if (!r.ok || !r.body) {
      let data = null;
      try {
        data = await r.json();
      } catch (e) {
        data = null;
      }
      throw new ApiError(r.status, data && data.error ? data.error : 'http_' + r.status,
        data && data.message ? data.message : r.statusText);
    }
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    let id = lastId || '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done || view !== state.view) return id;
      buf += decoder.decode(value, { stream: true });
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let event = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          else if (line.startsWith('id:')) id = line.slice(3).trim();
        }
        if (event === 'job' && data.length) onJob(JSON.parse(data.join('\n')));
        else if (event === 'reset') onJob(null);
      }
    }
  }

  /* Call fn now and then every ms while this view stays the current one;
   * fn resolves to false to stop. An error is shown; polling goes on
   * after a failure that may pass (5xx, 429, the network) and stops after
   * a refusal that will not (other 4xx: a credential refused, no such
   * job). */
  function poll(view, ms, fn) {
    const tick = async () => {
      if (view !== state.view) return;
      let again = true;
      try {
        again = (await fn()) !== false;
      } catch (err) {
        if (view === state.view) showError(err);
        again = !(err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429);
      }
      if (again && view === state.view) state.timer = setTimeout(tick, ms);
    };
    tick();
  }

  function render() {
    stopPolling();
    state.view++;
    clearError();
    const main = $('main');
    main.replaceChildren();
    const signedIn = credential() !== '';
    $('nav').hidden = !signedIn;
    if (!signedIn) {
      renderSignIn(main);
      return;
    }
    const { parts, query } = route();
    for (const a of document.querySelectorAll('#nav a[data-page]')) {
      a.classList.toggle('current', a.dataset.page === (parts[0] || 'overview'));
    }
    const view = state.view;
    if (parts[0] === 'jobs' && parts[1]) renderJob(main, view, parts[1]);
    else if (parts[0] === 'jobs') renderJobs(main, view, query);
    else if (parts[0] === 'schedules') renderSchedules(main, view);
    else if (parts[0] === 'webhooks') renderWebhooks(main, view);
    else renderOverview(main, view);
  }

  /* --- sign-in ---------------------------------------------------------- */

  function renderSignIn(main, message) {
    const input = el('input', {
      id: 'credential', type: 'password', autocomplete: 'off', required: true,
      placeholder: 'API key or JWT',
    });
    const form = el('form', { id: 'signin' },
      el('h1', { text: 'Sign in' }),
      el('label', { for: 'credential', text: 'API key or JWT' }),
      input,
      el('button', { type: 'submit', id: 'signin-submit', text: 'Sign in' }),
      el('p', { class: 'hint', text: 'Kept in this tab only (sessionStorage) and sent as Authorization: Bearer to /v1.' }));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      signIn(input.value.trim());
    });
    main.append(form);
    if (message) showError(message);
    input.focus();
  }

  async function signIn(value) {
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    try {
      const me = await api('GET', '/v1/me');
      state.scopes = me.scopes || [];
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      state.scopes = [];
      render();
      showError(err);
      return;
    }
    if (!location.hash || location.hash === '#' || location.hash === '#/') {
      location.hash = '#/overview'; /* hashchange renders */
    } else {
      render();
    }
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    state.scopes = [];
    render();
  }

  /* --- overview --------------------------------------------------------- */

  /* /healthz and /readyz (no credential needed): this server's roles and
   * version, and its stores and leaders as readiness sees them. */
  async function probe(path) {
    const r = await fetch(path, { cache: 'no-store' });
    return r.json();
  }

  function renderServer(box, health, ready) {
    const leaders = ready.leaders || {};
    const names = Object.keys(leaders);
    box.replaceChildren(el('dl', { id: 'server' },
      ...field('server', (health.roles || []).join(', ') + ' \u00b7 version ' + health.version +
        ' \u00b7 up ' + health.uptime_seconds + ' s', 'server-roles'),
      ...field('ready', ready.status, 'server-ready'),
      ...field('database', ready.database || 'not configured', 'server-database'),
      ...field('redis', ready.redis || 'not configured', 'server-redis'),
      ...field('leaders', names.length
        ? names.map((n) => n + ': ' + (leaders[n] === null ? 'none' : leaders[n])).join(' \u00b7 ')
        : 'no elections', 'server-leaders')));
  }

  function renderOverview(main, view) {
    const server = el('div', { id: 'overview-server' });
    const body = el('div', { id: 'overview-body', text: 'loading' });
    const sampled = el('p', { id: 'overview-sampled', class: 'hint' });
    const rate = el('p', { id: 'overview-rate', class: 'hint' });
    main.append(el('h1', { text: 'Overview' }), server, el('h2', { text: 'Queues' }), sampled,
      rate, body);
    let before = null; /* the previous sample, for the throughput */
    poll(view, OVERVIEW_EVERY_MS, async () => {
      const [health, ready] = await Promise.all([probe('/healthz'), probe('/readyz')]);
      if (view !== state.view) return false;
      renderServer(server, health, ready);
      let data;
      try {
        data = await api('GET', '/v1/queues');
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) {
          /* A server without the endpoint: it will not appear before an
           * upgrade, so stop asking. */
          body.textContent = 'queue counts not available';
          return false;
        }
        throw err;
      }
      if (view !== state.view) return false;
      const head = el('tr', null, el('th', { text: 'queue' }),
        ...STATUSES.map((s) => el('th', { class: 'n', text: s })));
      const rows = (data.queues || []).map((q) => el('tr', { 'data-queue': q.queue },
        el('td', null, el('a', { href: '#/jobs?queue=' + encodeURIComponent(q.queue), text: q.queue })),
        ...STATUSES.map((s) => el('td', { class: 'n status-' + s, text: text(q[s]) }))));
      body.replaceChildren(rows.length
        ? el('table', { id: 'queues' }, el('thead', null, head), el('tbody', null, ...rows))
        : el('p', { text: 'no queues yet' }));
      sampled.textContent = data.sampled_at ? 'sampled at ' + data.sampled_at : '';
      /* finished jobs per second between two samples (where the backend
       * counts them: PostgreSQL) */
      const done = (data.queues || []).reduce((n, q) => n + (q.succeeded || 0) + (q.failed || 0) +
        (q.dead || 0), 0);
      const at = Date.parse(data.sampled_at);
      if (before && at > before.at && (data.queues || []).some((q) => 'succeeded' in q)) {
        rate.textContent = 'finished: ' + Math.max(0, Math.round((done - before.done) * 1000 /
          (at - before.at))) + ' jobs/s';
      }
      if (!before || at > before.at) before = { done, at };
      clearError();
      return true;
    });
  }

  /* --- jobs ------------------------------------------------------------- */

  function jobsHash(filters, cursor) {
    const q = new URLSearchParams();
    for (const k of ['status', 'queue', 'kind']) if (filters[k]) q.set(k, filters[k]);
    if (cursor) q.set('cursor', cursor);
    const s = q.toString();
    return '#/jobs' + (s ? '?' + s : '');
  }

  function renderJobs(main, view, query) {
    const filters = {
      status: query.get('status') || '', queue: query.get('queue') || '', kind: query.get('kind') || '',
    };
    const status = el('select', { id: 'filter-status', name: 'status' },
      el('option', { value: '', text: 'any status' }),
      ...STATUSES.map((s) => el('option', { value: s, text: s, selected: s === filters.status })));
    const queue = el('input', { id: 'filter-queue', name: 'queue', placeholder: 'queue', value: filters.queue });
    const kind = el('input', { id: 'filter-kind', name: 'kind', placeholder: 'kind', value: filters.kind });
    const form = el('form', { id: 'job-filters', class: 'filters' }, status, queue, kind,
      el('button', { type: 'submit', id: 'filter-apply', text: 'Filter' }));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      location.hash = jobsHash({ status: status.value, queue: queue.value.trim(), kind: kind.value.trim() });
    });
    status.addEventListener('change', () => form.requestSubmit());
    const list = el('div', { id: 'jobs-body', text: 'loading' });
    const pager = el('div', { class: 'pager' });
    /* Retry all: the finished jobs this filter shows, in batches of 500
     * (POST /v1/jobs/retry), until none is left. */
    const bulk = el('div', { class: 'actions' });
    if (can('jobs:write') && ['dead', 'failed', 'cancelled'].includes(filters.status)) {
      const all = el('button', { type: 'button', id: 'jobs-retry-all',
        text: 'Retry all ' + filters.status + (filters.kind ? ' ' + filters.kind : '') + ' jobs' });
      all.addEventListener('click', async () => {
        all.disabled = true;
        try {
          const body = { status: filters.status, limit: 500 };
          if (filters.kind) body.kind = filters.kind;
          if (filters.queue) body.queue = filters.queue;
          for (;;) {
            const r = await api('POST', '/v1/jobs/retry', body);
            if (!r.more || !r.retried || view !== state.view) break;
          }
          clearError();
          if (view === state.view) render(); /* the list as it is now */
        } catch (err) {
          if (view === state.view) showError(err);
          all.disabled = false;
        }
      });
      bulk.append(all);
    }
    main.append(el('h1', { text: 'Jobs' }), form, bulk, list, pager);

    const q = new URLSearchParams({ limit: '50' });
    for (const k of ['status', 'queue', 'kind']) if (filters[k]) q.set(k, filters[k]);
    const cursor = query.get('cursor') || '';
    if (cursor) q.set('cursor', cursor);
    const row = (j) => el('tr', { class: 'job', 'data-id': j.id, 'data-status': j.status },
      el('td', null, el('a', { href: '#/jobs/' + j.id, text: String(j.id) })),
      el('td', { text: j.queue }),
      el('td', { text: j.kind }),
      el('td', null, el('span', { class: 'status status-' + j.status, text: j.status })),
      el('td', { class: 'n', text: j.attempts + '/' + j.max_attempts }),
      el('td', { text: j.created_at }));
    const table = (rows) => el('table', { id: 'jobs' },
      el('thead', null, el('tr', null, ...['id', 'queue', 'kind', 'status', 'attempts', 'created']
        .map((h) => el('th', { text: h })))),
      el('tbody', null, ...rows));
    /* A change from GET /v1/events: a shown job's row is redrawn; a job
     * created since (pending, not shown) that the status filter admits
     * goes on top, the page kept at 50 rows. */
    const change = (j) => {
      const shown = list.querySelector('tr.job[data-id="' + j.id + '"]');
      if (shown) {
        shown.replaceWith(row(j));
        return;
      }
      if (j.status !== 'pending' || j.attempts !== 0 || (filters.status && filters.status !== 'pending')) return;
      let body = list.querySelector('#jobs tbody');
      if (!body) {
        list.replaceChildren(table([]));
        body = list.querySelector('#jobs tbody');
      }
      body.prepend(row(j));
      while (body.children.length > 50) body.lastChild.remove();
    };
    /* The first page follows the jobs' changes while it is shown (later
     * pages are a fixed slice of the past). A backend without a change
     * feed (501) or a refused credential stops it; a stream the server
     * ended (a drain, a slow reader) is resumed from its last event. */
    const live = async () => {
      const eq = new URLSearchParams();
      for (const k of ['queue', 'kind']) if (filters[k]) eq.set(k, filters[k]);
      const path = '/v1/events' + (eq.toString() ? '?' + eq.toString() : '');
      let lastId = '';
      while (view === state.view) {
        try {
          lastId = await follow(view, path, (j) => {
            if (view !== state.view) return;
            if (j) change(j);
            else render(); /* the stream could not resume: the list as it is now */
          }, lastId);
        } catch (err) {
          if (view !== state.view || (err && err.name === 'AbortError')) return;
          if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429) return;
          if (err instanceof ApiError && err.status === 501) return;
        }
        await new Promise((res) => { state.timer = setTimeout(res, LIVE_RETRY_MS); });
      }
    };
    api('GET', '/v1/jobs?' + q.toString()).then((data) => {
      if (view !== state.view) return;
      const rows = data.jobs.map(row);
      list.replaceChildren(rows.length ? table(rows) : el('p', { id: 'jobs-empty', text: 'no jobs match' }));
      /* Cursors only go forward: "first page" goes back to the start. */
      if (cursor) pager.append(el('a', { id: 'jobs-first', href: jobsHash(filters), text: 'first page' }));
      if (data.next_cursor !== null && data.next_cursor !== undefined) {
        pager.append(el('a', { id: 'jobs-next', href: jobsHash(filters, String(data.next_cursor)), text: 'next' }));
      }
      if (!cursor) live();
    }).catch((err) => {
      if (view !== state.view) return;
      list.textContent = '';
      showError(err);
    });
  }

  /* --- one job ---------------------------------------------------------- */

  function field(name, value, id) {
    return [el('dt', { text: name }), el('dd', { id: id || null, text: text(value) })];
  }

  function renderJob(main, view, id) {
    if (!/^[0-9]+$/.test(id)) {
      main.append(el('p', { text: 'no such job: ' + id }));
      return;
    }
    const title = el('h1', { text: 'Job ' + id });
    const body = el('div', { id: 'job-body', text: 'loading' });
    main.append(el('p', null, el('a', { href: '#/jobs', text: '\u2190 jobs' })), title, body);

    const fields = el('dl', { id: 'job-fields' });
    const bar = el('progress', { id: 'job-progress', max: '100', value: '0' });
    const pct = el('span', { id: 'job-percent' });
    const step = el('span', { id: 'job-step', class: 'hint' });
    const actions = el('div', { id: 'job-actions', class: 'actions' });
    const payload = el('pre', { id: 'job-payload' });
    const result = el('pre', { id: 'job-result' });
    const lastError = el('pre', { id: 'job-error' });
    let built = false;

    const show = (j) => {
      if (!built) {
        body.replaceChildren(fields, el('div', { class: 'progress' }, bar, pct, step), actions,
          el('h2', { text: 'Payload' }), payload, el('h2', { text: 'Result' }), result,
          el('h2', { text: 'Last error' }), lastError);
        built = true;
      }
      fields.replaceChildren(
        ...field('status', j.status, 'job-status'),
        ...field('kind', j.kind), ...field('queue', j.queue),
        ...field('attempts', j.attempts + ' / ' + j.max_attempts, 'job-attempts'),
        ...field('priority', j.priority), ...field('run at', j.run_at),
        ...field('created', j.created_at), ...field('started', j.started_at),
        ...field('finished', j.finished_at), ...field('worker', j.worker_id),
        ...field('unique key', j.unique_key));
      const p = j.progress_percent === null || j.progress_percent === undefined ? null : j.progress_percent;
      if (p === null) bar.removeAttribute('value'); /* indeterminate */
      else bar.value = p;
      pct.textContent = p === null ? 'no progress reported' : p + '%';
      step.textContent = j.current_step || '';
      payload.textContent = json(j.payload);
      result.textContent = json(j.result) || '-';
      lastError.textContent = j.last_error || '-';
      actions.replaceChildren();
      if (can('jobs:write')) {
        if (['dead', 'failed', 'cancelled'].includes(j.status)) {
          actions.append(actionButton('job-retry', 'Retry', 'POST', '/v1/jobs/' + id + '/retry'));
        }
        if (['pending', 'running'].includes(j.status)) {
          actions.append(actionButton('job-cancel', 'Cancel', 'POST', '/v1/jobs/' + id + '/cancel'));
        }
      }
    };

    /* An action answers the job as it is now: show it, and poll again if
     * it is live once more (a retried job is pending). */
    const actionButton = (bid, label, method, path) => {
      const b = el('button', { type: 'button', id: bid, text: label });
      b.addEventListener('click', async () => {
        b.disabled = true;
        try {
          const j = await api(method, path);
          if (view !== state.view) return;
          clearError();
          show(j);
          if (['pending', 'running'].includes(j.status)) {
            stopPolling();
            start();
          }
        } catch (err) {
          if (view === state.view) showError(err);
        } finally {
          b.disabled = false;
        }
      });
      return b;
    };

    /* Live from the job's event stream while it may still move; once it
     * is finished its page no longer changes by itself. When the stream
     * cannot be had, or ends while the job is still live (a draining
     * server), every second by GET instead. */
    const pollJob = () => poll(view, JOB_EVERY_MS, async () => {
      const j = await api('GET', '/v1/jobs/' + id);
      if (view !== state.view) return false;
      show(j);
      return ['pending', 'running'].includes(j.status);
    });
    const start = async () => {
      let last = null;
      try {
        await follow(view, '/v1/jobs/' + id + '/events', (j) => {
          if (view !== state.view) return;
          clearError();
          last = j;
          show(j);
        });
      } catch (err) {
        if (view !== state.view || (err && err.name === 'AbortError')) return;
        if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429) {
          showError(err);
          return;
        }
      }
      if (view === state.view && (!last || ['pending', 'running'].includes(last.status))) pollJob();
    };
    start();
  }

  /* --- schedules -------------------------------------------------------- */

  function renderSchedules(main, view) {
    const body = el('div', { id: 'schedules-body', text: 'loading' });
    main.append(el('h1', { text: 'Schedules' }), body);
    const load = () => api('GET', '/v1/schedules').then((data) => {
      if (view !== state.view) return;
      const write = can('schedules:write');
      const rows = data.schedules.map((s) => {
        const toggle = write ? el('button', {
          type: 'button', class: 'toggle', 'data-name': s.name, text: s.enabled ? 'Disable' : 'Enable',
        }) : null;
        if (toggle) {
          toggle.addEventListener('click', async () => {
            toggle.disabled = true;
            try {
              await api('PATCH', '/v1/schedules/' + encodeURIComponent(s.name), { enabled: !s.enabled });
              clearError();
              await load();
            } catch (err) {
              if (view === state.view) showError(err);
              toggle.disabled = false;
            }
          });
        }
        /* Run now: the schedule's job at once; its page follows it. */
        const run = write ? el('button', {
          type: 'button', class: 'run', 'data-name': s.name, text: 'Run now',
        }) : null;
        if (run) {
          run.addEventListener('click', async () => {
            run.disabled = true;
            try {
              const j = await api('POST', '/v1/schedules/' + encodeURIComponent(s.name) + '/run');
              clearError();
              if (view === state.view) location.hash = '#/jobs/' + j.id;
            } catch (err) {
              if (view === state.view) showError(err);
              run.disabled = false;
            }
          });
        }
        return el('tr', { class: 'schedule', 'data-name': s.name, 'data-enabled': String(s.enabled) },
          el('td', { text: s.name }),
          el('td', null, el('code', { text: s.cron })),
          el('td', { text: s.timezone }),
          el('td', { text: s.kind }),
          el('td', { text: s.queue }),
          el('td', { class: 'enabled', text: s.enabled ? 'enabled' : 'disabled' }),
          el('td', { class: 'next-fire', text: text(s.next_fire) }),
          el('td', { class: 'last-fire', text: text(s.last_fire) }),
          el('td', null, s.last_job_id ? el('a', { href: '#/jobs/' + s.last_job_id, text: String(s.last_job_id) }) : '-'),
          el('td', { class: 'actions' }, toggle, run));
      });
      body.replaceChildren(rows.length
        ? el('table', { id: 'schedules' },
          el('thead', null, el('tr', null, ...['name', 'cron', 'timezone', 'kind', 'queue', 'state',
            'next fire', 'last fire', 'last job', ''].map((h) => el('th', { text: h })))),
          el('tbody', null, ...rows))
        : el('p', { text: 'no schedules' }));
    }).catch((err) => {
      if (view !== state.view) return;
      body.textContent = '';
      showError(err);
    });
    load();
  }

  /* --- webhook sources -------------------------------------------------- */

  /* GET /v1/webhooks: each declared source, what it enqueues and how its
   * deliveries are verified (no secret ever leaves the server). */
  function renderWebhooks(main, view) {
    const body = el('div', { id: 'webhooks-body', text: 'loading' });
    main.append(el('h1', { text: 'Webhook sources' }), body);
    api('GET', '/v1/webhooks').then((data) => {
      if (view !== state.view) return;
      const rows = data.sources.map((s) => el('tr', { class: 'source', 'data-name': s.name },
        el('td', { text: s.name }),
        el('td', null, el('code', { text: 'POST ' + s.url })),
        el('td', { class: 'scheme', text: s.scheme }),
        el('td', null, el('a', { href: jobsHash({ kind: s.kind }), text: s.kind })),
        el('td', { text: s.queue || 'default' }),
        el('td', { text: s.delivery_id || '-' }),
        el('td', { text: s.handshake ? 'yes' : 'no' })));
      body.replaceChildren(rows.length
        ? el('table', { id: 'webhooks' },
          el('thead', null, el('tr', null, ...['source', 'endpoint', 'signature', 'kind', 'queue',
            'delivery id', 'GET handshake'].map((h) => el('th', { text: h })))),
          el('tbody', null, ...rows))
        : el('p', { id: 'webhooks-none', text: 'no webhook sources are declared (--kinds)' }));
    }).catch((err) => {
      if (view !== state.view) return;
      body.textContent = '';
      showError(err);
    });
  }

  /* --- start ------------------------------------------------------------ */

  async function boot() {
    $('signout').addEventListener('click', signOut);
    window.addEventListener('hashchange', render);
    if (credential()) {
      /* A reload: learn the scopes again before showing anything. */
      try {
        state.scopes = (await api('GET', '/v1/me')).scopes || [];
      } catch (err) {
        sessionStorage.removeItem(TOKEN_KEY);
        render();
        showError(err);
        return;
      }
    }
    render();
  }

  document.addEventListener('DOMContentLoaded', boot);
})();
