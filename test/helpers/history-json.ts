/**
 * History <-> canonical Temporal JSON (the format `temporal workflow show --output json` writes).
 * historyToJSON / historyFromJSON from @temporalio/common come first. In this install they throw
 * "type must be a Type": @temporalio/common carries its own protobufjs 8 for protojson while
 * @temporalio/proto's reflection root is built with protobufjs 7. The fallback does the same
 * conversion with protobufjs 8 throughout (the proto descriptors moved into a root of its own) and
 * crosses between the two through the binary encoding, which both versions share.
 */
import path from 'node:path';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { lifeboatDataConverter } from '../../src/client/temporal';
import { loadConfig } from '../../src/config';
import { ENCRYPTED_ENCODING } from '../../src/engines/payload-codec';
import { EXAMPLE_CONFIG_FILE } from './temporal';

type History = temporal.api.history.v1.IHistory;
const History = temporal.api.history.v1.History;

interface ProtoType {
  encode(message: unknown): { finish(): Uint8Array };
  decode(bytes: Uint8Array): unknown;
}

let protojson: { type: ProtoType; toJson(type: ProtoType, m: unknown): unknown; fromJson(type: ProtoType, json: unknown, o: object): unknown } | undefined;

function fallback(): NonNullable<typeof protojson> {
  if (protojson) return protojson;
  // The protobufjs @temporalio/common resolves (its own copy when it has one).
  const from = { paths: [path.dirname(require.resolve('@temporalio/common/package.json'))] };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pb = require(require.resolve('protobufjs', from)) as { Root: { fromJSON(json: unknown): { lookupType(name: string): ProtoType } } };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ext = require(require.resolve('protobufjs/ext/protojson', from)) as { toJson(type: ProtoType, m: unknown): unknown; fromJson(type: ProtoType, json: unknown, o: object): unknown };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const descriptors = (require('@temporalio/proto/protos/json-module') as { toJSON(): unknown }).toJSON();
  protojson = { type: pb.Root.fromJSON(descriptors).lookupType('temporal.api.history.v1.History'), toJson: ext.toJson, fromJson: ext.fromJson };
  return protojson;
}

export function historyToJson(history: History): string {
  try {
    return historyToJSON(history);
  } catch {
    const p = fallback();
    const message = p.type.decode(History.encode(History.fromObject(history)).finish());
    return JSON.stringify(p.toJson(p.type, message), null, 2);
  }
}

export function historyFromJson(json: unknown): History {
  try {
    return historyFromJSON(json);
  } catch {
    const p = fallback();
    const message = p.fromJson(p.type, json, { ignoreUnknownFields: true });
    return History.decode(p.type.encode(message).finish());
  }
}

/**
 * The history with every encrypted payload decoded, for recording: test/histories must replay on
 * any machine, and each stack has a key of its own. Payloads not encrypted stay as they are.
 */
export async function plaintextHistory(history: History, codecs: PayloadCodec[]): Promise<History> {
  const visit = async (node: unknown): Promise<void> => {
    if (!node || typeof node !== 'object' || node instanceof Uint8Array) return;
    const entries: Array<[string | number, unknown]> = Array.isArray(node) ? node.map((v, i) => [i, v]) : Object.entries(node);
    for (const [key, value] of entries) {
      const encoding = (value as Payload | null)?.metadata?.encoding;
      if (encoding instanceof Uint8Array && Buffer.from(encoding).toString() === ENCRYPTED_ENCODING) {
        let decoded = value as Payload;
        for (const codec of [...codecs].reverse()) [decoded] = await codec.decode([decoded]);
        (node as Record<string | number, unknown>)[key] = decoded;
      } else await visit(value);
    }
  };
  await visit(history);
  return history;
}

/** The run's history as test/histories keeps it: fetched, then decoded with the stack's keyring. */
export async function recordableHistory(handle: WorkflowHandle): Promise<History> {
  return plaintextHistory(await handle.fetchHistory(), lifeboatDataConverter(loadConfig(EXAMPLE_CONFIG_FILE)).payloadCodecs ?? []);
}

/** A payload read raw from the server (heartbeat details, a summary) as the client's data converter reads it. */
export async function payloadValue(client: Client, payload: Payload): Promise<unknown> {
  const { payloadCodecs, payloadConverter } = client.options.loadedDataConverter;
  let decoded = payload;
  for (const codec of [...payloadCodecs].reverse()) [decoded] = await codec.decode([decoded]);
  return payloadConverter.fromPayload(decoded);
}
