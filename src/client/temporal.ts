/** Connecting to Temporal the way the config says, and start-up checks of the namespace. */
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { LifeboatConfig } from '../config';
import { AesGcmPayloadCodec, loadKeyring } from '../engines/payload-codec';
import { ALL_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { temporal } from '@temporalio/proto';

export async function connectClient(config: LifeboatConfig): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: config.temporal.address, connectTimeout: 5000 });
  } catch (err) {
    throw new Error(`cannot reach Temporal at ${config.temporal.address} (${(err as Error).message}): start it with \`lifeboat stack up\` or fix temporal.address in the config.`);
  }
  return new Client({ connection, namespace: config.temporal.namespace, dataConverter: lifeboatDataConverter(config) });
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
