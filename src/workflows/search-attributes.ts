/**
 * The search attributes that make lifeboat's workflows findable in the Temporal Web UI and
 * `lifeboat list`. Declared once: workflows set them, the local stack registers them at
 * server start, and production clusters get them from `lifeboat` start-up checks.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const LifeboatKind = defineSearchAttributeKey('LifeboatKind', SearchAttributeType.KEYWORD);
export const LifeboatTarget = defineSearchAttributeKey('LifeboatTarget', SearchAttributeType.KEYWORD);
export const LifeboatEnvironment = defineSearchAttributeKey('LifeboatEnvironment', SearchAttributeType.KEYWORD);
export const LifeboatPhase = defineSearchAttributeKey('LifeboatPhase', SearchAttributeType.KEYWORD);
export const LifeboatAwaitingApproval = defineSearchAttributeKey('LifeboatAwaitingApproval', SearchAttributeType.BOOL);
export const LifeboatBackupType = defineSearchAttributeKey('LifeboatBackupType', SearchAttributeType.KEYWORD);
export const LifeboatIncidentId = defineSearchAttributeKey('LifeboatIncidentId', SearchAttributeType.KEYWORD);

export const ALL_SEARCH_ATTRIBUTES = [
  LifeboatKind,
  LifeboatTarget,
  LifeboatEnvironment,
  LifeboatPhase,
  LifeboatAwaitingApproval,
  LifeboatBackupType,
  LifeboatIncidentId,
] as const;

/** The type names `temporal server start-dev --search-attribute Name=Type` expects. */
const CLI_TYPE_NAMES: Record<string, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

export function searchAttributeCliArgs(): string[] {
  return ALL_SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=${CLI_TYPE_NAMES[key.type]}`]);
}
