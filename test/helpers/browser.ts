/**
 * A real browser for checking what people look at: Debian's headless Chromium, driven by
 * playwright-core (which gives every launch a fresh profile). The flags keep Chromium from
 * reaching for Google's services, which this machine's closed network refuses, slowly, at start.
 */
import fs from 'node:fs';
import { Browser, chromium } from 'playwright-core';

export const CHROMIUM = process.env.LIFEBOAT_CHROMIUM || '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium is not at ${CHROMIUM}: run \`npm run provision\` (Debian package chromium) or set LIFEBOAT_CHROMIUM.`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
