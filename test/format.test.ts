/** The one formatter each for sizes and durations that every surface uses. No server needed. */
import assert from 'node:assert/strict';
import { formatAge, formatBytes, formatDuration } from '../src/domain/format';

describe('formatting for people', () => {
  it('writes sizes in binary units, labelled as such', () => {
    assert.deepEqual([0, 1023, 1536, 5 * 1024 ** 2, 1.5 * 1024 ** 3, 2 * 1024 ** 4].map(formatBytes), ['0 B', '1023 B', '1.5 KiB', '5.0 MiB', '1.5 GiB', '2.0 TiB']);
    assert.equal(formatBytes(undefined), 'size unknown');
  });

  it('writes exact durations with their two largest units', () => {
    assert.deepEqual([0, 45, 60, 125, 3600, 3720, 86400, 93600, -3].map((s) => formatDuration(s)), ['0 s', '45 s', '1 min', '2 min 5 s', '1 h', '1 h 2 min', '1 d', '1 d 2 h', '0 s']);
  });

  it('writes ages and lags coarsely, and "never" for nothing', () => {
    assert.deepEqual([4, 90, 1330, 5400, 9000, 200000].map(formatAge), ['4 s', '90 s', '22 min', '90 min', '2.5 h', '2.3 days']);
    assert.equal(formatAge(undefined), 'never');
  });
});
