/**
 * The RTO prediction bench (bench/rto-prediction.ts), run small on the real stack: drills at two
 * sizes, a prediction at a third, a drill there, and the error between them. The figures depend
 * on the machine; what is checked is how they are made: the prediction uses the bench's drills,
 * fitted across their sizes, against the size measured on the source, and the error is computed.
 */
import assert from 'node:assert/strict';
import { runRtoPredictionBench, RtoBenchResult } from '../bench/rto-prediction';
import { createPorts, Ports } from '../src/activities/ports';
import { loadConfig } from '../src/config';
import { CONFIG_FILE } from './helpers/cli';
import { useStack } from './helpers/stack';
import { useTemporal, workflowBundle } from './helpers/temporal';

describe('RTO prediction bench, small (real worker, real stack)', function () {
  let ports: Ports;
  let result: RtoBenchResult;
  const config = loadConfig(CONFIG_FILE);
  const lines: string[] = [];

  before(async function () {
    this.timeout(1800000);
    await useStack();
    const env = await useTemporal();
    ports = createPorts(config, { log: () => undefined });
    result = await runRtoPredictionBench({ config, ports, connection: env.nativeConnection, client: env.client, workflowBundle: await workflowBundle(), baseRows: 0, growth: 1.5, log: (l) => lines.push(l) });
  });

  after(async () => {
    await ports?.close();
  });

  it('predicts from the drills it made, at two sizes, and computes the error against the drill at the third', () => {
    const [base, middle] = result.drills;
    assert.ok(middle.orders > base.orders && middle.sizeBytes > base.sizeBytes, JSON.stringify(result.drills));
    const p = result.prediction;
    assert.ok(p.basis.drillIds.includes(base.drillId) && p.basis.drillIds.includes(middle.drillId), JSON.stringify(p.basis));
    assert.ok(p.basis.drills >= 2);
    assert.ok(p.currentSizeBytes! > middle.sizeBytes * 0.9, `${p.currentSizeBytes} against ${middle.sizeBytes}`);
    assert.ok(p.predictedSeconds! > 0 && result.measuredSeconds > 0);
    assert.equal(result.error, (p.predictedSeconds! - result.measuredSeconds) / result.measuredSeconds);
    assert.ok(Number.isFinite(result.oneSizeError));
    assert.equal(result.oneSizePrediction.basis.drills, 1);
    assert.ok(lines.some((l) => /^predicted \d+ s, measured \d+ s: error -?\d+\.\d %/.test(l)), lines.join('\n'));
  });
});
