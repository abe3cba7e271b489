/** What a verification found, in a form that fits workflow history and reports. */
export interface VerificationSummary {
  ok: boolean;
  checks: Array<{ name: string; ok: boolean; detail: string }>;
  tables: Array<{ table: string; rows: number; checksum: string }>;
}
