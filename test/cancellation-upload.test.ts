/**
 * Cancellation reaches a streamed upload: it stops its source and aborts the multipart upload
 * when its signal fires. The upload goes to the stack's MinIO.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { uploadFromStreams } from '../src/engines/crypto-stream';
import { s3ClientFor } from '../src/stack/stack';
import { useStack } from './helpers/stack';

describe('cancellation stops streamed uploads', function () {
  it('uploadFromStreams: an aborted signal stops the source and aborts the multipart upload', async function () {
    this.timeout(120000);
    const stack = await useStack();
    const region = stack.ctx.settings.minio.primary;
    const s3 = s3ClientFor(stack.ctx.settings, region);
    const key = `lbtest-cancel-${randomBytes(4).toString('hex')}/stream.bin`;
    const child = spawn('/bin/sh', ['-c', 'while :; do head -c 1048576 /dev/zero; sleep 0.05; done'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const abort = new AbortController();
    try {
      setTimeout(() => abort.abort(new Error('CANCELLED')), 1500);
      const outcome = await uploadFromStreams({ s3, bucket: region.backupBucket, key, streams: [child.stdout!, new PassThrough()], partSize: 5 * 1024 * 1024, queueSize: 1, signal: abort.signal });
      assert.equal(outcome.ok, false);
      assert.match(String((outcome as { error: unknown }).error), /CANCELLED/);
      const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: region.backupBucket, Prefix: key }));
      assert.deepEqual(uploads.Uploads ?? [], [], 'no incomplete upload is left behind');
    } finally {
      child.kill('SIGKILL');
      s3.destroy();
    }
  });
});
