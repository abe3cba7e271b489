/**
 * The one AWS account the SDK-boundary tests speak for: its regions, the protected RDS source
 * and its KMS keys, written as AWS writes them, so every mock answers about the same world.
 */
export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';
export const DR_REGION = 'us-west-2';
export const SOURCE = 'orders-prod';
export const DBI = 'db-7XKQ3M5ZUJHVW2NPT4Y6GLARCE';
export const PRIMARY_KMS = `arn:aws:kms:${REGION}:${ACCOUNT}:key/0f6e3b2a-8c1d-4e5f-9a7b-1c2d3e4f5a6b`;
export const DR_KMS = `arn:aws:kms:${DR_REGION}:${ACCOUNT}:key/5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d`;

/** The `$metadata` of an error reply, as the SDK attaches it. */
export const errorMeta = { httpStatusCode: 400, requestId: '5b7f2f1e-4c61-4d0b-9d0e-2f1f6f7c9a10', attempts: 1, totalRetryDelay: 0 };
