/** The config file: its schema and types, the loader, and the generated reference. */
export * from './schema';
export * from './load';
export { redactSecrets, redactDeep, redactError, resolveSecretUrl, containsSecret } from './secrets';
export { renderConfigDocs, configDocsPath, renderConfigJsonSchema, configJsonSchemaPath } from './docs';
export { parseDuration, formatConfigDuration } from './duration';
