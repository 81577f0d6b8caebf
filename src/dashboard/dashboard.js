/*
 * Strata's dashboard: reads the node's /v1/stats once a second and draws it.
 * Everything it shows is computed from those snapshots: rates and windowed
 * percentiles are differences of two consecutive ones. Plain browser script
 * (no modules, no build step of its own); uPlot is inlined before it.
 */
(() => {
  const POLL_MS = 1000;
  /** Seconds of history the charts keep (the page's own memory: it starts empty when the page loads). */
  const WINDOW = 300;
  const FETCH_TIMEOUT_MS = 2000;
  const ROUTE_SERIES = ['get', 'head', 'put', 'delete', 'mget', 'invalidate'];
  const OPS = [
    ['GET', (s) => s.latency.routes.get],
    ['PUT', (s) => s.latency.routes.put],
    ['DELETE', (s) => s.latency.routes.delete],
    ['L2 op', (s) => s.latency.l2],
  ];
  const COLORS = ['#2f6fdf', '#e8590c', '#2b8a3e', '#c2255c', '#7048e8', '#0c8599', '#868e96', '#f08c00'];
  const BREAKER = ['closed', 'half-open', 'open'];

  const $ = (selector) => document.querySelector(selector);
  const statusEl = $('#status');
  const detailEl = $('#status-detail');

  /** Sets a number shown in a tile: the text for people, data-value for tests and scripts. */
  function stat(name, value, text) {
    const el = document.querySelector(`[data-stat="${name}"]`);
    if (el === null) return;
    el.dataset.value = String(value);
    el.textContent = text ?? String(value);
  }

  const fmt = {
    int: (n) => Math.round(n).toLocaleString('en-US'),
    rate: (n) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1)),
    pct: (r) => `${(r * 100).toFixed(r === 0 || r === 1 ? 0 : 1)} %`,
    bytes: (n) => {
      const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
      let i = 0;
      while (n >= 1024 && i < units.length - 1) {
        n /= 1024;
        i++;
      }
      return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
    },
    seconds: (s) => {
      if (s === null || s === undefined) return '–';
      if (s === 0) return '0';
      if (s < 1e-3) return `${(s * 1e6).toFixed(0)} µs`;
      if (s < 1) return `${(s * 1e3).toFixed(s < 0.01 ? 2 : 1)} ms`;
      return `${s.toFixed(2)} s`;
    },
    uptime: (s) => {
      const d = Math.floor(s / 86400);
      const h = Math.floor((s % 86400) / 3600);
      const m = Math.floor((s % 3600) / 60);
      return `up ${d > 0 ? `${d}d ` : ''}${h}h ${m}m ${s % 60}s`;
    },
  };

  /** The q-quantile of non-cumulative power-of-two bucket counts (bucket i: up to 2^i µs), as /v1/stats computes it. */
  function quantile(buckets, q) {
    let count = 0;
    for (const b of buckets) count += b;
    if (count === 0) return null;
    const last = buckets.length - 1;
    const bound = (i) => 2 ** i / 1e6;
    const rank = q * count;
    let seen = 0;
    for (let i = 0; i < buckets.length; i++) {
      const n = buckets[i];
      if (n > 0 && seen + n >= rank) {
        if (i >= last) return bound(last - 1);
        const low = i === 0 ? 0 : bound(i - 1);
        return low + (bound(i) - low) * ((rank - seen) / n);
      }
      seen += n;
    }
    return bound(last - 1);
  }

  const sum = (values) => values.reduce((a, b) => a + b, 0);
  const routeTotal = (s, route) => sum(Object.values(s.requests[route] ?? {}));
  const byClass = (s, test) => {
    let n = 0;
    for (const codes of Object.values(s.requests)) for (const [code, count] of Object.entries(codes)) if (test(code)) n += count;
    return n;
  };
  const originValues = (s) => sum(s.origins.map((o) => o.values));

  // ---- charts ---------------------------------------------------------------------------------

  const charts = [];
  /** A uPlot line chart over time; `series` are [label, stroke, value formatter]; the y axis's ticks use `tick`. */
  function chart(id, series, yLabel, range, tick) {
    const host = document.getElementById(id);
    const data = [[], ...series.map(() => [])];
    const plot = new uPlot(
      {
        width: Math.max(320, host.clientWidth),
        height: 220,
        scales: { x: { time: true }, y: range === undefined ? { auto: true } : { range } },
        axes: [{}, { label: yLabel, size: 70, values: (_u, splits) => splits.map((v) => (v === null ? '' : (tick ?? fmt.rate)(v))) }],
        series: [{}, ...series.map(([label, stroke, value]) => ({ label, stroke, width: 1.5, value: (_u, v) => (v === null ? '–' : value(v)) }))],
        legend: { live: true },
      },
      data,
      host,
    );
    const entry = { plot, data, host };
    charts.push(entry);
    return entry;
  }
  function push(entry, t, values) {
    entry.data[0].push(t);
    values.forEach((v, i) => {
      entry.data[i + 1].push(v);
    });
    while (entry.data[0].length > WINDOW) for (const column of entry.data) column.shift();
    entry.plot.setData(entry.data);
  }
  window.addEventListener('resize', () => {
    for (const { plot, host } of charts) plot.setSize({ width: Math.max(320, host.clientWidth), height: 220 });
  });

  const routesChart = chart(
    'chart-routes',
    [...ROUTE_SERIES, 'other'].map((r, i) => [r, COLORS[i], fmt.rate]),
    'req/s',
  );
  const resultsChart = chart(
    'chart-results',
    [
      ['2xx/3xx', COLORS[2], fmt.rate],
      ['4xx', COLORS[7], fmt.rate],
      ['5xx and other', COLORS[3], fmt.rate],
    ],
    'answers/s',
  );
  const levelsChart = chart(
    'chart-levels',
    [
      ['L1', COLORS[0], fmt.pct],
      ['L2', COLORS[1], fmt.pct],
      ['origin', COLORS[2], fmt.pct],
      ['stale', COLORS[3], fmt.pct],
      ['miss', COLORS[6], fmt.pct],
    ],
    'share of lookups',
    [0, 1],
    fmt.pct,
  );
  const latencyChart = chart(
    'chart-latency',
    OPS.flatMap(([label], i) => [
      [`${label} p50`, COLORS[i], fmt.seconds],
      [`${label} p99`, COLORS[i + 4], fmt.seconds],
    ]),
    'latency',
    undefined,
    fmt.seconds,
  );
  let threadsChart = null;
  const memoryChart = chart(
    'chart-memory',
    [
      ['RSS', COLORS[3], fmt.bytes],
      ['L1 charged', COLORS[0], fmt.bytes],
      ['L1 budget', COLORS[6], fmt.bytes],
    ],
    'bytes',
    undefined,
    fmt.bytes,
  );

  // ---- tables ---------------------------------------------------------------------------------

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }
  function fill(selector, rows) {
    const body = document.querySelector(`${selector} tbody`);
    body.replaceChildren(
      ...rows.map((cells) => {
        const tr = document.createElement('tr');
        for (const c of cells) tr.append(Array.isArray(c) ? cell(c[0], c[1]) : cell(c));
        return tr;
      }),
    );
  }

  // ---- one snapshot -----------------------------------------------------------------------------

  let prev = null;

  function update(s) {
    // A restarted node starts its counters again: rates need a new baseline.
    if (prev !== null && (s.node.id !== prev.node.id || s.node.startedMs !== prev.node.startedMs)) prev = null;
    $('#node-id').textContent = s.node.id;
    $('#node-id').dataset.value = s.node.id;
    $('#version').textContent =
      `v${s.node.version} · ${s.config.fronts} front${s.config.fronts === 1 ? '' : 's'} · ${s.config.shards} shard${s.config.shards === 1 ? '' : 's'} · L2 ${s.config.l2 ?? 'none'}`;
    $('#uptime').textContent = fmt.uptime(s.uptimeSeconds);

    const l1 = s.levels.L1;
    const l2 = s.levels.L2;
    stat('requestsTotal', s.requestsTotal, fmt.int(s.requestsTotal));
    stat('l1HitRate', l1.hitRate, fmt.pct(l1.hitRate));
    stat('l2HitRate', l2 ? l2.hitRate : 0, l2 ? fmt.pct(l2.hitRate) : 'no L2');
    stat('requestsInFlight', s.requestsInFlight, fmt.int(s.requestsInFlight));
    stat('l1Items', l1.items, fmt.int(l1.items));
    stat('l1Bytes', l1.bytes, `${fmt.bytes(l1.bytes)} / ${fmt.bytes(s.memory.l1BudgetBytes)}`);
    stat('rssBytes', s.memory.rssBytes, fmt.bytes(s.memory.rssBytes));
    const l2State = !s.l2.configured ? 'none' : s.l2.up ? 'up' : 'down';
    stat('l2State', l2State);
    document.querySelector('[data-stat="l2State"]').className = `big ${l2State === 'down' ? 'bad' : l2State === 'up' ? 'good' : ''}`;
    const gaps = s.l2.bus ? s.l2.bus.gaps : 0;
    stat('busGaps', gaps, s.l2.bus ? fmt.int(gaps) : 'no bus');

    const t = s.timeMs / 1000;
    if (prev !== null) {
      const dt = (s.timeMs - prev.timeMs) / 1000;
      if (dt > 0) {
        const rate = (now, before) => Math.max(0, now - before) / dt;
        const perRoute = ROUTE_SERIES.map((r) => rate(routeTotal(s, r), routeTotal(prev, r)));
        const all = rate(s.requestsTotal, prev.requestsTotal);
        stat('requestsPerSecond', all, fmt.rate(all));
        push(routesChart, t, [...perRoute, Math.max(0, all - sum(perRoute))]);
        const classRate = (test) => rate(byClass(s, test), byClass(prev, test));
        push(resultsChart, t, [
          classRate((c) => c.startsWith('2') || c.startsWith('3')),
          classRate((c) => c.startsWith('4')),
          classRate((c) => c.startsWith('5') || c === 'other'),
        ]);
        const lookups = l1.gets - prev.levels.L1.gets;
        if (lookups > 0) {
          const share = (now, before) => Math.max(0, now - before) / lookups;
          const shares = [
            share(l1.hits, prev.levels.L1.hits),
            l2 ? share(l2.hits, prev.levels.L2.hits) : 0,
            share(originValues(s), originValues(prev)),
            share(s.coordination.staleAnswers, prev.coordination.staleAnswers),
          ];
          push(levelsChart, t, [...shares, Math.max(0, 1 - sum(shares))]);
        } else push(levelsChart, t, [null, null, null, null, null]);
        push(
          latencyChart,
          t,
          OPS.flatMap(([, of]) => {
            const window = of(s).buckets.map((b, i) => b - of(prev).buckets[i]);
            return [quantile(window, 0.5), quantile(window, 0.99)];
          }),
        );
        if (threadsChart === null || threadsChart.data.length !== 1 + s.shards.length + s.fronts.length) {
          document.getElementById('chart-threads').replaceChildren();
          charts.splice(charts.indexOf(threadsChart), threadsChart === null ? 0 : 1);
          threadsChart = chart(
            'chart-threads',
            [
              ...s.shards.map((sh, i) => [`shard ${sh.shard}`, COLORS[i % COLORS.length], fmt.pct]),
              ...s.fronts.map((f, i) => [`front ${f.front}`, COLORS[(i + 4) % COLORS.length], fmt.pct]),
            ],
            'busy share',
            [0, 1],
            fmt.pct,
          );
        }
        push(threadsChart, t, [...s.shards.map((sh) => sh.utilization), ...s.fronts.map((f) => f.utilization)]);
      }
    }
    push(memoryChart, t, [s.memory.rssBytes, s.memory.l1ChargedBytes, s.memory.l1BudgetBytes]);

    fill(
      '#latency',
      [
        ...Object.entries(s.latency.routes)
          .filter(([, h]) => h.count > 0)
          .map(([route, h]) => [`${route} (request)`, h]),
        ...Object.entries(s.latency.shardOps)
          .filter(([, h]) => h.count > 0)
          .map(([op, h]) => [`${op} (shard op)`, h]),
        ...(s.latency.l2.count > 0 ? [['L2 op', s.latency.l2]] : []),
        ...Object.entries(s.latency.origins)
          .filter(([, h]) => h.count > 0)
          .map(([name, h]) => [`origin ${name}`, h]),
      ].map(([name, h]) => [
        name,
        fmt.int(h.count),
        fmt.seconds(h.p50Seconds),
        fmt.seconds(h.p90Seconds),
        fmt.seconds(h.p99Seconds),
        fmt.seconds(h.p999Seconds),
      ]),
    );
    fill(
      '#shards',
      s.shards.map((sh) => [
        String(sh.shard),
        sh.up ? ['up', 'good'] : ['DOWN', 'bad'],
        fmt.int(sh.l1.items),
        fmt.bytes(sh.l1.bytes),
        fmt.int(sh.l1.evictions),
        fmt.pct(sh.l1.hitRate),
        fmt.int(sh.opsPerSecond),
        fmt.pct(sh.utilization),
        fmt.pct(sh.eventLoopUtilization),
        sh.l2Breaker === undefined ? '–' : [BREAKER[sh.l2Breaker] ?? String(sh.l2Breaker), sh.l2Breaker === 0 ? 'good' : 'bad'],
        fmt.int(sh.workerStarts),
      ]),
    );
    fill(
      '#fronts',
      s.fronts.map((f) => [
        String(f.front),
        fmt.int(f.requests),
        fmt.int(f.requestsInFlight),
        fmt.pct(f.utilization),
        [fmt.seconds(f.loopDelayP99Seconds), f.loopDelayP99Seconds > 0.1 ? 'bad' : ''],
        fmt.int(f.starts),
      ]),
    );
    const l2Rows = [['configured', s.l2.configured ? `yes (${s.l2.mode})` : 'no']];
    if (s.l2.configured) {
      l2Rows.push(['state', s.l2.up ? ['up', 'good'] : ['down', 'bad']]);
      l2Rows.push(['shards ready', `${s.l2.shardsReady} of ${s.shards.length}`]);
      l2Rows.push(['breakers open', [String(s.l2.breakersOpen), s.l2.breakersOpen > 0 ? 'bad' : '']]);
      l2Rows.push(['bus subscribed', s.l2.busSubscribed ? 'yes' : ['no', 'bad']]);
      if (s.l2.lastError) l2Rows.push(['last error', [s.l2.lastError, 'bad']]);
      for (const [kind, n] of Object.entries(l2.errors)) l2Rows.push([`errors: ${kind}`, [fmt.int(n), n > 0 ? 'warn' : '']]);
      l2Rows.push(['bus messages sent', fmt.int(s.l2.bus.sent)]);
      l2Rows.push(['bus messages received', fmt.int(s.l2.bus.received)]);
      l2Rows.push(['bus gaps (each empties the L1)', [fmt.int(s.l2.bus.gaps), s.l2.bus.gaps > 0 ? 'warn' : '']]);
      l2Rows.push(['L1 entries dropped by the bus', fmt.int(s.l2.bus.l1Drops)]);
      const delay = s.l2.bus.delay;
      const recent = prev?.l2.bus
        ? quantile(
            delay.buckets.map((b, i) => b - prev.l2.bus.delay.buckets[i]),
            0.99,
          )
        : null;
      l2Rows.push(['bus delay p99, last second (own messages back)', recent === null ? '–' : fmt.seconds(recent)]);
      l2Rows.push(['bus delay p50 / p99 since start', delay.count === 0 ? '–' : `${fmt.seconds(delay.p50Seconds)} / ${fmt.seconds(delay.p99Seconds)}`]);
    }
    fill('#l2', l2Rows);
    fill(
      '#origins',
      s.origins.map((o) => [
        o.name,
        fmt.int(o.loads),
        fmt.int(o.values),
        fmt.int(o.notFound),
        fmt.int(o.errors),
        fmt.int(o.timeouts),
        fmt.int(o.busy),
        fmt.int(o.inFlight),
      ]),
    );
    const hot = s.hotKeys;
    $('#hot-keys-note').textContent =
      hot === undefined
        ? 'not reported by this node'
        : 'the most read keys of each shard lately (a sample of the reads, counted with the space-saving algorithm; estimates may overcount by the error shown)';
    fill(
      '#hot-keys',
      (hot ?? []).map((k) => [k.key, String(k.shard), `${fmt.int(k.estimate)} (± ${fmt.int(k.error)})`]),
    );
    prev = s;
  }

  // ---- polling ----------------------------------------------------------------------------------

  let lastOkMs = 0;
  function setState(state, detail) {
    statusEl.dataset.state = state;
    statusEl.textContent = state === 'live' ? 'live' : state === 'signed-out' ? 'signed out' : 'node unreachable';
    document.body.classList.toggle('stale', state !== 'live');
    detailEl.textContent = detail;
  }

  async function poll() {
    try {
      const res = await fetch('/v1/stats', { credentials: 'same-origin', cache: 'no-store', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
      if (res.status === 401) {
        setState('signed-out', 'the node wants its admin token: reload the page to sign in again');
        return;
      }
      if (!res.ok) throw new Error(`/v1/stats answered ${res.status}`);
      update(await res.json());
      lastOkMs = Date.now();
      setState('live', '');
    } catch (err) {
      const since = lastOkMs === 0 ? 'no data yet' : `the numbers below are from ${new Date(lastOkMs).toLocaleTimeString()}`;
      setState('down', `${err instanceof Error ? err.message : String(err)}; retrying every second; ${since}`);
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }
  void poll();
})();
