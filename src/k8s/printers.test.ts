import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeObject } from './objects.js';
import { printerFor, toTable } from './printers.js';

const now = Date.parse('2026-12-06T12:00:00Z');

function pod(statuses: unknown[]): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', creationTimestamp: '2026-12-06T11:00:00Z' },
    spec: { containers: statuses.map(() => ({})) },
    status: { phase: 'Running', containerStatuses: statuses },
  } as KubeObject;
}

const restartsCell = (o: KubeObject) => {
  const p = printerFor('Pod');
  const i = p.columns.findIndex((c) => c.name === 'Restarts');
  return p.cells(o, now)[i];
};

describe('the Pod table’s RESTARTS (kubectl’s printPod)', () => {
  it('shows the count and the age of the last restart: `1 (5s ago)`', () => {
    assert.equal(
      restartsCell(
        pod([
          {
            ready: true,
            restartCount: 1,
            lastState: { terminated: { exitCode: 1, finishedAt: '2026-12-06T11:59:55Z' } },
          },
        ]),
      ),
      '1 (5s ago)',
    );
  });

  it('sums the containers and takes the latest finishedAt of any', () => {
    assert.equal(
      restartsCell(
        pod([
          {
            restartCount: 2,
            lastState: { terminated: { exitCode: 137, finishedAt: '2026-12-06T11:00:00Z' } },
          },
          {
            restartCount: 3,
            lastState: { terminated: { exitCode: 1, finishedAt: '2026-12-06T11:55:00Z' } },
          },
          { restartCount: 0, lastState: {} },
        ]),
      ),
      '5 (5m ago)',
    );
  });

  it('shows the bare count without a last termination, and 0 with one but no restarts', () => {
    assert.equal(restartsCell(pod([{ restartCount: 2 }])), '2');
    assert.equal(restartsCell(pod([{ restartCount: 0, lastState: {} }])), '0');
    assert.equal(
      restartsCell(
        pod([
          {
            restartCount: 0,
            lastState: { terminated: { exitCode: 0, finishedAt: '2026-12-06T11:59:00Z' } },
          },
        ]),
      ),
      '0',
    );
  });

  it('declares the column a string in the served Table, as the API server does', () => {
    const t = toTable('Pod', [pod([])], '1', 'None', now) as {
      columnDefinitions: Array<{ name: string; type: string }>;
      rows: Array<{ cells: unknown[] }>;
    };
    assert.deepEqual(
      t.columnDefinitions.find((c) => c.name === 'Restarts'),
      {
        name: 'Restarts',
        type: 'string',
        format: '',
        description: 'Restarts',
        priority: 0,
      },
    );
    assert.equal(t.rows[0]!.cells[3], '0');
  });
});
