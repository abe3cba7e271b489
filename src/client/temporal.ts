/**
 * Connecting to Temporal the way the config and the environment say (see
 * src/engines/temporal-connection.ts for where each setting comes from), and start-up checks of
 * the namespace. Every lifeboat client and worker connects through here.
 */
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import { LifeboatConfig } from '../config';
import { AesGcmPayloadCodec, loadKeyring } from '../engines/payload-codec';
import { ALL_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { temporal } from '@temporalio/proto';
import { connectionOptions, explainConnectFailure, resolveTemporalConnection, TemporalConnectionSettings } from '../config/temporal-connection';

export { resolveTemporalConnection, type TemporalConnectionSettings } from '../config/temporal-connection';

/** A client connection (the CLI, start-up checks); fails with one sentence saying what to fix. */
export async function connectTemporal(config: LifeboatConfig, env: NodeJS.ProcessEnv = process.env): Promise<{ connection: Connection; settings: TemporalConnectionSettings }> {
  const settings = resolveTemporalConnection(config.temporal, env);
  try {
    return { connection: await Connection.connect({ ...connectionOptions(settings), connectTimeout: 5000 }), settings };
  } catch (err) {
    throw new Error(await explainConnectFailure(settings, err));
  }
}

export async function connectClient(config: LifeboatConfig, env: NodeJS.ProcessEnv = process.env): Promise<Client> {
  const { connection, settings } = await connectTemporal(config, env);
  return new Client({ connection, namespace: settings.namespace, dataConverter: lifeboatDataConverter(config) });
}

/** A worker's connection, with the same settings as the client's. */
export async function connectWorkerConnection(config: LifeboatConfig, env: NodeJS.ProcessEnv = process.env): Promise<{ connection: NativeConnection; settings: TemporalConnectionSettings }> {
  const settings = resolveTemporalConnection(config.temporal, env);
  try {
    return { connection: await NativeConnection.connect(connectionOptions(settings)), settings };
  } catch (err) {
    throw new Error(await explainConnectFailure(settings, err));
  }
}

/** Module the failure converter is loaded from (the workflow sandbox loads it by path, too). */
export const FAILURE_CONVERTER_PATH = require.resolve('../workflows/failure-converter');

/**
 * How every lifeboat client and worker encodes payloads: encrypted with the config's keyring when
 * it has one (`temporal.encryption`), failure messages inside the encoded part either way.
 */
export function lifeboatDataConverter(config: LifeboatConfig): DataConverter {
  const encryption = config.temporal.encryption;
  return {
    failureConverterPath: FAILURE_CONVERTER_PATH,
    ...(encryption ? { payloadCodecs: [new AesGcmPayloadCodec(loadKeyring(encryption))] } : {}),
  };
}

const INDEXED_TYPE: Record<string, temporal.api.enums.v1.IndexedValueType> = {
  KEYWORD: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  BOOL: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  TEXT: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  INT: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT,
  DOUBLE: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  DATETIME: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  KEYWORD_LIST: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

/**
 * Makes sure lifeboat's search attributes exist in the namespace; adds the missing ones.
 * The local dev server registers them at start; a production cluster gets them here once.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const known = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = ALL_SEARCH_ATTRIBUTES.filter((key) => !known.has(key.name));
  if (missing.length === 0) return [];
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((key) => [key.name, INDEXED_TYPE[key.type]])),
    });
  } catch (err) {
    if (!/already exists/i.test((err as Error).message)) {
      throw new Error(`Temporal namespace ${namespace} lacks search attributes ${missing.map((k) => k.name).join(', ')} and refused to add them (${(err as Error).message}): ask its administrator to add them.`);
    }
  }
  return missing.map((k) => k.name);
}
