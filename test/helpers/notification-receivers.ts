/**
 * Local receivers for the notification channels, each answering as the real service does:
 * an HTTP server that takes Slack-compatible webhook posts (answers "ok") and PagerDuty Events API
 * v2 events (checks the event's shape as PagerDuty documents it, answers 202 with status
 * "success" and the dedup_key, or 400 "invalid event"); and an SMTP server that speaks the protocol
 * (EHLO, STARTTLS with a certificate from a local CA, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, QUIT),
 * written here on node:net and node:tls, keeping every message it accepted, decoded.
 */
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';

export interface ReceivedPost {
  path: string;
  body: Record<string, unknown>;
  at: number;
}

export interface HttpReceiver {
  /** Base URL, e.g. http://127.0.0.1:1234 */
  url: string;
  posts: ReceivedPost[];
  slack(): ReceivedPost[];
  pagerDuty(): Array<ReceivedPost & { body: { event_action: string; dedup_key?: string; routing_key: string; payload?: Record<string, unknown>; links?: unknown[] } }>;
  /** Until `count` posts match, or the time is up (then the test fails with what did arrive). */
  waitFor(match: (p: ReceivedPost) => boolean, count?: number, timeoutMs?: number): Promise<ReceivedPost[]>;
  /** Makes the PagerDuty path answer 500 (an outage) until set back. */
  failing: boolean;
  close(): Promise<void>;
}

const PD_ACTIONS = ['trigger', 'acknowledge', 'resolve'];
const PD_SEVERITIES = ['critical', 'error', 'warning', 'info'];

/** What PagerDuty would refuse in an event, as its 400 answer lists it. */
function pagerDutyProblems(e: Record<string, unknown>): string[] {
  const problems: string[] = [];
  if (typeof e.routing_key !== 'string' || e.routing_key.length !== 32) problems.push("'routing_key' must be a 32-character integration key");
  if (!PD_ACTIONS.includes(e.event_action as string)) problems.push("'event_action' is invalid");
  if (e.event_action !== 'trigger' && typeof e.dedup_key !== 'string') problems.push("'dedup_key' is required for acknowledge and resolve");
  if (e.event_action === 'trigger') {
    const p = e.payload as Record<string, unknown> | undefined;
    if (!p) problems.push("'payload' is missing");
    else {
      if (typeof p.summary !== 'string' || !p.summary || p.summary.length > 1024) problems.push("'payload.summary' must be 1 to 1024 characters");
      if (typeof p.source !== 'string' || !p.source) problems.push("'payload.source' is missing");
      if (!PD_SEVERITIES.includes(p.severity as string)) problems.push("'payload.severity' is invalid");
    }
    if (typeof e.dedup_key === 'string' && e.dedup_key.length > 255) problems.push("'dedup_key' is over 255 characters");
  }
  return problems;
}

export async function startHttpReceiver(): Promise<HttpReceiver> {
  const posts: ReceivedPost[] = [];
  const receiver = {} as HttpReceiver;
  receiver.failing = false;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        res.writeHead(400, { 'Content-Type': 'text/plain' }).end('invalid_payload');
        return;
      }
      const path = req.url ?? '/';
      if (path.startsWith('/pagerduty/')) {
        if (receiver.failing) {
          res.writeHead(500, { 'Content-Type': 'application/json' }).end('{"status":"error","message":"internal error"}');
          return;
        }
        const problems = pagerDutyProblems(body);
        if (problems.length) {
          res.writeHead(400, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status: 'invalid event', message: 'Event object is invalid', errors: problems }));
          return;
        }
        posts.push({ path, body, at: Date.now() });
        res.writeHead(202, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status: 'success', message: 'Event processed', dedup_key: body.dedup_key ?? 'generated' }));
        return;
      }
      if (typeof body.text !== 'string' || !body.text) {
        res.writeHead(400, { 'Content-Type': 'text/plain' }).end('no_text');
        return;
      }
      posts.push({ path, body, at: Date.now() });
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return Object.assign(receiver, {
    url,
    posts,
    slack: () => posts.filter((p) => p.path.startsWith('/slack/')),
    pagerDuty: () => posts.filter((p) => p.path.startsWith('/pagerduty/')) as ReturnType<HttpReceiver['pagerDuty']>,
    waitFor: (match: (p: ReceivedPost) => boolean, count = 1, timeoutMs = 60000) => waitUntil(() => posts.filter(match), count, timeoutMs, () => posts.map((p) => `${p.path} ${JSON.stringify(p.body).slice(0, 200)}`)),
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  });
}

async function waitUntil<T>(read: () => T[], count: number, timeoutMs: number, describe: () => string[]): Promise<T[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = read();
    if (found.length >= count) return found;
    if (Date.now() > until) throw new Error(`waited ${timeoutMs} ms for ${count} matching deliveries, got ${found.length}; received: ${describe().join(' | ') || 'nothing'}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ----- SMTP --------------------------------------------------------------------------------------

export interface ReceivedMail {
  from: string;
  to: string[];
  headers: Record<string, string>;
  subject: string;
  text: string;
  /** Whether the message came over TLS (STARTTLS), and who authenticated. */
  encrypted: boolean;
  user?: string;
}

export interface SmtpReceiver {
  port: number;
  mails: ReceivedMail[];
  /** Commands in the order received (passwords blanked), for protocol assertions. */
  commands: string[];
  waitFor(match: (m: ReceivedMail) => boolean, count?: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  close(): Promise<void>;
}

function decodeHeader(value: string): string {
  return value.replace(/=\?UTF-8\?B\?([^?]+)\?=/gi, (_, b64: string) => Buffer.from(b64, 'base64').toString('utf8'));
}

function parseMessage(raw: string): { headers: Record<string, string>; text: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split);
  const body = raw.slice(split + 4);
  const headers: Record<string, string> = {};
  for (const l of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = l.indexOf(':');
    if (colon > 0) headers[l.slice(0, colon).toLowerCase()] = l.slice(colon + 1).trim();
  }
  const text = /base64/i.test(headers['content-transfer-encoding'] ?? '') ? Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8') : body;
  return { headers, text: text.replace(/\r\n/g, '\n') };
}

/**
 * An SMTP server on 127.0.0.1. With `tls` it offers STARTTLS and AUTH only after it (as a
 * submission server must); `users` are the accepted user/password pairs (none: AUTH not offered).
 */
export async function startSmtpReceiver(options: { tls?: { key: string; cert: string }; users?: Record<string, string> } = {}): Promise<SmtpReceiver> {
  const mails: ReceivedMail[] = [];
  const commands: string[] = [];
  const sockets = new Set<net.Socket>();

  const serve = (plain: net.Socket) => {
    sockets.add(plain);
    plain.on('close', () => sockets.delete(plain));
    let socket: net.Socket = plain;
    let encrypted = false;
    let user: string | undefined;
    let from = '';
    let to: string[] = [];
    let buffer = '';
    let inData = false;
    let authLogin: { stage: 'user' | 'password'; user?: string } | undefined;
    const reply = (text: string) => socket.write(`${text}\r\n`);

    const capabilities = () => [
      '250-lifeboat-test-smtp',
      '250-SIZE 10485760',
      ...(options.tls && !encrypted ? ['250-STARTTLS'] : []),
      ...(options.users && (encrypted || !options.tls) ? ['250-AUTH PLAIN LOGIN'] : []),
      '250 8BITMIME',
    ];

    const onLine = (line: string) => {
      if (authLogin) {
        const value = Buffer.from(line, 'base64').toString('utf8');
        commands.push('(auth data)');
        if (authLogin.stage === 'user') {
          authLogin = { stage: 'password', user: value };
          reply('334 UGFzc3dvcmQ6');
        } else {
          const ok = options.users?.[authLogin.user ?? ''] === value;
          if (ok) user = authLogin.user;
          authLogin = undefined;
          reply(ok ? '235 2.7.0 Authentication successful' : '535 5.7.8 Authentication credentials invalid');
        }
        return;
      }
      const verb = line.split(' ')[0].toUpperCase();
      commands.push(verb === 'AUTH' ? line.split(' ').slice(0, 2).join(' ') : line);
      switch (verb) {
        case 'EHLO':
          for (const c of capabilities()) reply(c);
          return;
        case 'HELO':
          reply('250 lifeboat-test-smtp');
          return;
        case 'STARTTLS': {
          if (!options.tls || encrypted) return void reply('502 5.5.1 STARTTLS not available');
          reply('220 2.0.0 Ready to start TLS');
          plain.removeAllListeners('data');
          const secure = new tls.TLSSocket(plain, { isServer: true, key: options.tls.key, cert: options.tls.cert });
          socket = secure;
          encrypted = true;
          buffer = '';
          secure.on('data', onData);
          secure.on('error', () => plain.destroy());
          return;
        }
        case 'AUTH': {
          if (!options.users || (options.tls && !encrypted)) return void reply('530 5.7.0 Must issue a STARTTLS command first');
          const [, mechanism, initial] = line.split(' ');
          if (mechanism?.toUpperCase() === 'PLAIN' && initial) {
            const [, name, password] = Buffer.from(initial, 'base64').toString('utf8').split('\0');
            const ok = options.users[name] === password;
            if (ok) user = name;
            return void reply(ok ? '235 2.7.0 Authentication successful' : '535 5.7.8 Authentication credentials invalid');
          }
          if (mechanism?.toUpperCase() === 'LOGIN') {
            authLogin = { stage: 'user' };
            return void reply('334 VXNlcm5hbWU6');
          }
          return void reply('504 5.5.4 Unrecognized authentication type');
        }
        case 'MAIL': {
          if (options.users && !user) return void reply('530 5.7.0 Authentication required');
          const m = /^MAIL FROM:<([^>]*)>/i.exec(line);
          if (!m) return void reply('501 5.5.4 Syntax: MAIL FROM:<address>');
          from = m[1];
          to = [];
          return void reply('250 2.1.0 Ok');
        }
        case 'RCPT': {
          const m = /^RCPT TO:<([^>]+)>/i.exec(line);
          if (!from) return void reply('503 5.5.1 Need MAIL command');
          if (!m) return void reply('501 5.5.4 Syntax: RCPT TO:<address>');
          to.push(m[1]);
          return void reply('250 2.1.5 Ok');
        }
        case 'DATA':
          if (!to.length) return void reply('503 5.5.1 Need RCPT command');
          inData = true;
          return void reply('354 End data with <CR><LF>.<CR><LF>');
        case 'RSET':
          from = '';
          to = [];
          return void reply('250 2.0.0 Ok');
        case 'NOOP':
          return void reply('250 2.0.0 Ok');
        case 'QUIT':
          reply('221 2.0.0 Bye');
          socket.end();
          return;
        default:
          reply('502 5.5.2 Command not recognized');
      }
    };

    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) return;
          // Undo dot-stuffing: a line that starts with ".." was sent for one starting with ".".
          const raw = buffer.slice(0, end).replace(/\r\n\.\./g, '\r\n.');
          buffer = buffer.slice(end + 5);
          inData = false;
          const { headers, text } = parseMessage(raw);
          mails.push({ from, to, headers, subject: decodeHeader(headers.subject ?? ''), text, encrypted, ...(user ? { user } : {}) });
          from = '';
          to = [];
          reply(`250 2.0.0 Ok: queued as ${mails.length}`);
          continue;
        }
        const end = buffer.indexOf('\r\n');
        if (end < 0) return;
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        onLine(line);
        if (socket !== plain && buffer === '' && !inData) return;
      }
    };

    plain.on('data', onData);
    plain.on('error', () => undefined);
    reply('220 lifeboat-test-smtp ESMTP ready');
  };

  const server = net.createServer(serve);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    mails,
    commands,
    waitFor: (match, count = 1, timeoutMs = 60000) => waitUntil(() => mails.filter(match), count, timeoutMs, () => mails.map((m) => `${m.to.join(',')}: ${m.subject}`)),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
