/**
 * Signed decisions in tests, with the TEST-ONLY keys of test/fixtures/keys (their public halves
 * are lifeboat.config.yaml's publicKeys): a decision input signed over exactly what the pending
 * gate shows, as `lifeboat approve --key` makes it.
 */
import { KeyObject } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { loadSigningKey, signDecision } from '../../src/client/decision-signing';
import { Decision, DecisionInput, GateName, normalizeIdentity, WorkflowStatus } from '../../src/domain/approval';
import { DEFAULT_SIGNATURE_LIFETIME_MS } from '../../src/domain/signed-decision';
import { approveUpdate, rejectUpdate, statusQuery } from '../../src/workflows/messages';

export const TEST_KEYS_DIR = path.resolve(__dirname, '../../../test/fixtures/keys');

let privateDir: string | undefined;

/**
 * A private copy (mode 600, in a mode-700 directory) of a file of test/fixtures/keys: git checks
 * the keys out 644, and lifeboat refuses a private key others can read, as a person's would be.
 */
export function privateTestKey(file: string): string {
  privateDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-test-keys-'));
  const copy = path.join(privateDir, file);
  if (!fs.existsSync(copy)) {
    fs.writeFileSync(copy, fs.readFileSync(path.join(TEST_KEYS_DIR, file)), { mode: 0o600 });
    fs.chmodSync(copy, 0o600); // whatever the umask
  }
  return copy;
}

/** The private key file of a test person (alice's is in OpenSSH form, the others PEM; a mode-600 copy), or undefined for someone without one. */
export function testKeyFile(who: string): string | undefined {
  const name = normalizeIdentity(who).split('@')[0];
  for (const file of [`${name}.key`, `${name}.pem`]) if (fs.existsSync(path.join(TEST_KEYS_DIR, file))) return privateTestKey(file);
  return undefined;
}

export function testKey(who: string): KeyObject {
  const file = testKeyFile(who);
  if (!file) throw new Error(`no test key for ${who} in ${TEST_KEYS_DIR}`);
  return loadSigningKey(file);
}

export interface SignOptions {
  /** Sign with this person's key instead of the decider's own (a wrong-key test). */
  keyOf?: string;
  lifetimeMs?: number;
  now?: Date;
  /** Change the statement after signing (a tampering test). */
  tamper?: (s: NonNullable<DecisionInput['signed']>) => void;
}

/** The decision, signed over the gate the workflow shows now. */
export async function signedInput(handle: WorkflowHandle, verdict: 'approved' | 'rejected', d: { by: string; reason: string; gate?: GateName }, o: SignOptions = {}): Promise<DecisionInput> {
  const [desc, status] = await Promise.all([handle.describe(), handle.query(statusQuery) as Promise<WorkflowStatus>]);
  const pending = status.pendingGate;
  // Nothing to sign against, or someone without a test key: sent unsigned, for the gate to judge.
  if (!pending || !testKeyFile(o.keyOf ?? d.by)) return { ...d };
  const signed = signDecision(testKey(o.keyOf ?? d.by), {
    workflowId: handle.workflowId,
    runId: desc.runId,
    gate: d.gate ?? pending.gate,
    prompt: pending.prompt,
    decision: verdict,
    by: d.by,
    reason: d.reason,
    lifetimeMs: o.lifetimeMs ?? DEFAULT_SIGNATURE_LIFETIME_MS,
    now: o.now,
  });
  o.tamper?.(signed);
  return { ...d, signed };
}

/** `lifeboat approve --key` through the update, with the decider's test key. */
export async function approveSigned(handle: WorkflowHandle, d: { by: string; reason: string; gate?: GateName }, o?: SignOptions): Promise<Decision> {
  return handle.executeUpdate(approveUpdate, { args: [await signedInput(handle, 'approved', d, o)] });
}

export async function rejectSigned(handle: WorkflowHandle, d: { by: string; reason: string; gate?: GateName }, o?: SignOptions): Promise<Decision> {
  return handle.executeUpdate(rejectUpdate, { args: [await signedInput(handle, 'rejected', d, o)] });
}
