/**
 * Email over SMTP (RFC 5321), spoken directly over a socket: EHLO, STARTTLS or implicit TLS,
 * AUTH PLAIN or LOGIN, MAIL/RCPT/DATA, QUIT. Small on purpose: lifeboat sends one plain-text
 * alert per delivery to a relay the operator runs (Postfix, SES, Mailgun, Office 365), and needs
 * no dependency for it. A password is never sent unencrypted unless the config allows it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';

export type SmtpSecurity = 'starttls' | 'implicit' | 'none';

export interface SmtpSettings {
  host: string;
  port: number;
  /** starttls: upgrade on the submission port (587); implicit: TLS from the first byte (465); none: plain (tests, a local relay). */
  security: SmtpSecurity;
  user?: string;
  password?: () => string;
  /** A PEM file of the CA that signed the server's certificate, when it is not a public one. */
  caFile?: string;
  /** How long one whole delivery may take. */
  timeoutMs: number;
}

export interface MailMessage {
  from: string;
  to: string[];
  subject: string;
  text: string;
}

/** An SMTP reply: its code and the text of every line. */
interface Reply {
  code: number;
  lines: string[];
}

/** Reads SMTP replies off a socket, one complete (possibly multi-line) reply per call. */
class ReplyReader {
  private buffer = '';
  private waiting: Array<{ resolve: (r: Reply) => void; reject: (e: Error) => void }> = [];
  private pending: string[] = [];
  private replies: Reply[] = [];
  private failure?: Error;

  attach(socket: net.Socket): void {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.take(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('the server closed the connection')));
  }

  detach(socket: net.Socket): void {
    socket.removeAllListeners('data');
    socket.removeAllListeners('error');
    socket.removeAllListeners('close');
  }

  next(): Promise<Reply> {
    const ready = this.replies.shift();
    if (ready) return Promise.resolve(ready);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  private take(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, end).replace(/\r$/, '');
      this.buffer = this.buffer.slice(end + 1);
      this.pending.push(line);
      // "250-..." continues a reply, "250 ..." (or "250") ends it.
      if (/^\d{3}(?: |$)/.test(line)) {
        const reply = { code: Number(line.slice(0, 3)), lines: this.pending.map((l) => l.slice(4)) };
        this.pending = [];
        const waiter = this.waiting.shift();
        if (waiter) waiter.resolve(reply);
        else this.replies.push(reply);
      }
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiting.splice(0)) w.reject(err);
  }
}

/** A header value in RFC 2047 form when it is not plain ASCII. */
function headerValue(text: string): string {
  const flat = text.replace(/[\r\n]+/g, ' ');
  return /^[\x20-\x7e]*$/.test(flat) ? flat : `=?UTF-8?B?${Buffer.from(flat, 'utf8').toString('base64')}?=`;
}

/** The message as sent after DATA: headers, then the body in base64 (any UTF-8, any line length). */
export function formatMail(m: MailMessage, now: Date = new Date()): string {
  const domain = m.from.split('@')[1] ?? 'lifeboat.local';
  const body = Buffer.from(m.text.replace(/\r?\n/g, '\r\n'), 'utf8')
    .toString('base64')
    .replace(/.{76}/g, '$&\r\n');
  return [
    `From: ${m.from}`,
    `To: ${m.to.join(', ')}`,
    `Subject: ${headerValue(m.subject)}`,
    `Date: ${now.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${crypto.randomUUID()}@${domain}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: base64',
    'Auto-Submitted: auto-generated',
    '',
    body,
  ].join('\r\n');
}

/** Sends one message; resolves with the server's answer to the message, rejects with a sentence naming the step that failed. */
export async function sendMail(settings: SmtpSettings, message: MailMessage): Promise<string> {
  const ca = settings.caFile ? fs.readFileSync(settings.caFile) : undefined;
  let socket: net.Socket = settings.security === 'implicit' ? tls.connect({ host: settings.host, port: settings.port, servername: net.isIP(settings.host) ? undefined : settings.host, ...(ca ? { ca } : {}) }) : net.connect({ host: settings.host, port: settings.port });
  let reader = new ReplyReader();
  reader.attach(socket);
  const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${settings.timeoutMs} ms`)), settings.timeoutMs);
  let step = 'connecting';
  const expect = async (codes: number[]): Promise<Reply> => {
    const reply = await reader.next();
    if (!codes.includes(reply.code)) throw new Error(`the server answered ${reply.code} ${reply.lines.join(' ').trim()}`);
    return reply;
  };
  const command = async (text: string, codes: number[], shown = text): Promise<Reply> => {
    step = shown;
    socket.write(`${text}\r\n`);
    return expect(codes);
  };
  try {
    await expect([220]);
    const hello = `EHLO ${os.hostname().replace(/[^A-Za-z0-9.-]/g, '') || 'lifeboat'}`;
    let capabilities = (await command(hello, [250])).lines.slice(1).map((l) => l.toUpperCase());
    let encrypted = settings.security === 'implicit';
    if (settings.security === 'starttls') {
      if (!capabilities.some((c) => c.startsWith('STARTTLS'))) throw new Error('the server does not offer STARTTLS; use security: implicit on its TLS port, or ask for STARTTLS on the relay');
      await command('STARTTLS', [220]);
      reader.detach(socket);
      const plain = socket;
      socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const secure = tls.connect({ socket: plain, servername: net.isIP(settings.host) ? undefined : settings.host, ...(ca ? { ca } : {}) }, () => resolve(secure));
        secure.once('error', reject);
      });
      reader = new ReplyReader();
      reader.attach(socket);
      encrypted = true;
      capabilities = (await command(hello, [250])).lines.slice(1).map((l) => l.toUpperCase());
    }
    if (settings.user) {
      if (!encrypted) throw new Error('refusing to send the SMTP password over an unencrypted connection: use security starttls or implicit');
      const password = settings.password?.() ?? '';
      const auth = capabilities.find((c) => c.startsWith('AUTH')) ?? '';
      if (/\bPLAIN\b/.test(auth)) {
        await command(`AUTH PLAIN ${Buffer.from(`\0${settings.user}\0${password}`, 'utf8').toString('base64')}`, [235], 'AUTH PLAIN');
      } else if (/\bLOGIN\b/.test(auth)) {
        await command('AUTH LOGIN', [334]);
        await command(Buffer.from(settings.user, 'utf8').toString('base64'), [334], 'AUTH LOGIN (user)');
        await command(Buffer.from(password, 'utf8').toString('base64'), [235], 'AUTH LOGIN (password)');
      } else {
        throw new Error('the server offers neither AUTH PLAIN nor AUTH LOGIN');
      }
    }
    await command(`MAIL FROM:<${message.from}>`, [250]);
    for (const to of message.to) await command(`RCPT TO:<${to}>`, [250, 251]);
    await command('DATA', [354]);
    step = 'sending the message';
    // Dot-stuffing: a line starting with "." gets another, so it cannot end the message early.
    socket.write(`${formatMail(message).replace(/\r\n\./g, '\r\n..')}\r\n.\r\n`);
    const accepted = await expect([250]);
    await command('QUIT', [221]).catch(() => undefined);
    return `accepted by ${settings.host}:${settings.port} (${accepted.lines.join(' ').trim()})`;
  } catch (err) {
    throw new Error(`SMTP ${settings.host}:${settings.port} failed at ${step}: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}
