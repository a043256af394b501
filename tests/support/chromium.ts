import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium: the binary itself (the /usr/bin/chromium wrapper script also works). Override with SAGAFLOW_CHROMIUM. */
export function chromiumPath(): string {
  const given = process.env.SAGAFLOW_CHROMIUM;
  if (given !== undefined && given !== '') return given;
  return ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => existsSync(p)) ?? '/usr/bin/chromium';
}

/** A headless Chromium with a fresh profile (playwright-core never downloads a browser: it drives Debian's). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}
