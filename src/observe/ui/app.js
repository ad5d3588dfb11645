// The service map page: cytoscape (compound nodes per cluster, fcose layout)
// fed by the UI server's event stream (/api/events: `map` snapshots and
// `flow` events). Served as a static file; runs in the browser.
/* global cytoscape */
(function () {
  'use strict';
  const COLORS = { FORWARDED: '#2e7d32', DROPPED: '#c62828' };
  const MAX_ROWS = 500;
  const $ = (id) => document.getElementById(id);
  const filter = { namespace: '', verdict: '', pod: '' };
  let lastMap = { clusters: [], nodes: [], edges: [], windowMs: 30000 };
  const flows = [];

  const cy = cytoscape({
    container: $('map'),
    wheelSensitivity: 0.3,
    style: [
      {
        selector: 'node',
        style: {
          shape: 'round-rectangle',
          label: 'data(label)',
          'text-valign': 'center',
          'font-size': 11,
          'background-color': '#e3eaf2',
          'border-width': 1,
          'border-color': '#7b8794',
          width: 'label',
          height: 28,
          padding: 8,
        },
      },
      { selector: 'node[kind = "service"]', style: { 'background-color': '#fff4d6', 'border-color': '#b7791f' } },
      { selector: 'node[kind = "world"]', style: { 'background-color': '#eee', 'border-style': 'dashed' } },
      {
        selector: ':parent',
        style: {
          'background-color': '#f8fafc',
          'border-color': '#52606d',
          'border-width': 2,
          'text-valign': 'top',
          'text-halign': 'center',
          'font-weight': 'bold',
          'font-size': 13,
          padding: 16,
        },
      },
      {
        selector: 'edge',
        style: {
          width: 2,
          'curve-style': 'bezier',
          'target-arrow-shape': 'triangle',
          'line-color': '#9aa5b1',
          'target-arrow-color': '#9aa5b1',
          label: 'data(label)',
          'font-size': 10,
          'text-background-color': '#fff',
          'text-background-opacity': 0.8,
        },
      },
      {
        selector: 'edge[verdict = "FORWARDED"]',
        style: { 'line-color': COLORS.FORWARDED, 'target-arrow-color': COLORS.FORWARDED },
      },
      {
        selector: 'edge[verdict = "DROPPED"]',
        style: { 'line-color': COLORS.DROPPED, 'target-arrow-color': COLORS.DROPPED, 'line-style': 'dashed' },
      },
    ],
  });
  window.tendrilMap = cy;

  function nodeVisible(n) {
    return !filter.namespace || n.namespace === filter.namespace;
  }

  function renderMap() {
    const m = lastMap;
    $('window').textContent = String(Math.round(m.windowMs / 1000));
    const nodes = m.nodes.filter(nodeVisible);
    const ids = new Set(nodes.map((n) => n.id));
    const edges = m.edges.filter(
      (e) => ids.has(e.source) && ids.has(e.target) && (!filter.verdict || e.verdict === filter.verdict),
    );
    const want = new Map();
    for (const c of new Set(nodes.map((n) => n.cluster))) {
      want.set('cluster:' + c, { group: 'nodes', data: { id: 'cluster:' + c, label: c, kind: 'cluster' } });
    }
    for (const n of nodes) {
      const label = (n.namespace ? n.namespace + '/' : '') + n.name;
      want.set(n.id, { group: 'nodes', data: { id: n.id, parent: 'cluster:' + n.cluster, label, kind: n.kind } });
    }
    for (const e of edges) {
      const label = e.rate.toFixed(2) + '/s' + (e.ports.length ? ' ' + e.ports.join(',') : '');
      want.set(e.id, {
        group: 'edges',
        data: { id: e.id, source: e.source, target: e.target, verdict: e.verdict, rate: e.rate, total: e.total, label },
      });
    }
    let added = false;
    cy.batch(() => {
      cy.elements().forEach((el) => {
        if (!want.has(el.id())) el.remove();
      });
      for (const [id, el] of want) {
        const have = cy.getElementById(id);
        if (have.nonempty()) {
          if (el.group === 'edges') have.data(el.data);
        } else {
          cy.add(el);
          added = true;
        }
      }
    });
    if (added) {
      cy.layout({ name: 'fcose', animate: false, randomize: true, nodeDimensionsIncludeLabels: true, idealEdgeLength: 120 }).run();
    }
  }

  function matches(f) {
    if (filter.verdict && f.verdict !== filter.verdict) return false;
    const sides = [f.source, f.destination].filter(Boolean);
    if (filter.namespace && !sides.some((e) => e.namespace === filter.namespace)) return false;
    if (filter.pod) {
      const i = filter.pod.indexOf('/');
      const ns = i >= 0 ? filter.pod.slice(0, i) : undefined;
      const name = i >= 0 ? filter.pod.slice(i + 1) : filter.pod;
      if (!sides.some((e) => (e.podName || '').startsWith(name) && (ns === undefined || e.namespace === ns))) return false;
    }
    return true;
  }

  function side(ep, ip, svc) {
    let s = ep && ep.podName ? ep.namespace + '/' + ep.podName : ip || '?';
    if (svc && svc.name) s += ' (' + svc.namespace + '/' + svc.name + ')';
    return s;
  }

  function port(f) {
    const l4 = f.l4 || {};
    if (l4.TCP) return 'TCP/' + l4.TCP.destinationPort;
    if (l4.UDP) return 'UDP/' + l4.UDP.destinationPort;
    return l4.ICMPv4 ? 'ICMPv4' : l4.ICMPv6 ? 'ICMPv6' : '';
  }

  function row(f) {
    const tr = document.createElement('tr');
    tr.dataset.uuid = f.uuid;
    const t = new Date(f.time.seconds * 1000 + Math.floor(f.time.nanos / 1e6)).toISOString().slice(11, 23);
    const cells = [
      t,
      side(f.source, f.IP && f.IP.source),
      side(f.destination, f.IP && f.IP.destination, f.destinationService),
      port(f),
      f.verdict,
      f.dropReasonDesc || '',
      ((f.source && f.source.clusterName) || '') + ' → ' + ((f.destination && f.destination.clusterName) || ''),
      f.nodeName || '',
    ];
    cells.forEach((c, i) => {
      const td = document.createElement('td');
      td.textContent = c;
      if (i === 4) td.className = f.verdict;
      tr.appendChild(td);
    });
    return tr;
  }

  function renderTable() {
    const body = $('flows');
    body.textContent = '';
    const shown = flows.filter(matches).slice(-MAX_ROWS).reverse();
    for (const f of shown) body.appendChild(row(f));
  }

  function addFlow(f) {
    flows.push(f);
    if (flows.length > MAX_ROWS * 4) flows.splice(0, flows.length - MAX_ROWS * 4);
    if (matches(f)) {
      const body = $('flows');
      body.insertBefore(row(f), body.firstChild);
      while (body.childNodes.length > MAX_ROWS) body.removeChild(body.lastChild);
    }
  }

  for (const k of ['namespace', 'verdict', 'pod']) {
    $('f-' + k).addEventListener('input', (ev) => {
      filter[k] = ev.target.value.trim();
      renderTable();
      renderMap();
    });
  }

  const es = new EventSource('/api/events');
  es.addEventListener('open', () => ($('status').textContent = 'live'));
  es.addEventListener('error', () => ($('status').textContent = 'reconnecting'));
  es.addEventListener('map', (ev) => {
    lastMap = JSON.parse(ev.data);
    renderMap();
  });
  es.addEventListener('flow', (ev) => addFlow(JSON.parse(ev.data)));
  es.addEventListener('flows', (ev) => {
    for (const f of JSON.parse(ev.data)) flows.push(f);
    renderTable();
  });
})();
