/**
 * A real OpenSSH agent for a test (Debian's openssh-client): `ssh-agent -D` on a socket of the
 * test's own, keys added with `ssh-add`, stopped by its pid. Nothing of the person's own agent
 * (SSH_AUTH_SOCK of the shell) is touched.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TestSshAgent {
  socket: string;
  /** `ssh-add <file>` into this agent. */
  add(file: string): void;
  /** `ssh-add -D`: the agent keeps running with no keys. */
  removeAll(): void;
  stop(): Promise<void>;
}

export async function startSshAgent(): Promise<TestSshAgent> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-ssh-agent-'));
  const socket = path.join(dir, 'agent.sock');
  const agent: ChildProcess = spawn('ssh-agent', ['-D', '-a', socket], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  agent.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  for (let i = 0; !fs.existsSync(socket); i++) {
    if (agent.exitCode !== null || i > 100) throw new Error(`ssh-agent did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const env = { ...process.env, SSH_AUTH_SOCK: socket };
  return {
    socket,
    add: (file) => void execFileSync('ssh-add', [file], { env, stdio: 'pipe' }),
    removeAll: () => void execFileSync('ssh-add', ['-D'], { env, stdio: 'pipe' }),
    stop: async () => {
      if (agent.exitCode === null) {
        const exited = new Promise((r) => agent.once('exit', r));
        agent.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh key pair made with ssh-keygen (no passphrase), mode 600: its private key file, its `.pub` line, and `remove` for after. */
export function sshKeygen(type: 'ed25519' | 'rsa', comment: string): { file: string; publicLine: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-ssh-key-'));
  const file = path.join(dir, `id_${type}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', comment, '-f', file], { stdio: 'pipe' });
  return { file, publicLine: fs.readFileSync(`${file}.pub`, 'utf8').trim(), remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** `ssh-keygen -lf`'s SHA256 fingerprint of a public key file. */
export function sshFingerprintOf(publicKeyFile: string): string {
  return execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', publicKeyFile], { encoding: 'utf8' }).split(/\s+/)[1];
}
