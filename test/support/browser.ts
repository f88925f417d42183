import { type BrowserContext, chromium, type Page } from "playwright-core";

/**
 * Debian's Chromium, headless, through playwright-core (never a downloaded browser). The flags
 * keep it from reaching out to the network at start (this machine has none).
 */
export function launchChromium(profileDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    timezoneId: "UTC",
    locale: "en-GB",
    viewport: { width: 1280, height: 900 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * Collects what must never happen on the page: console errors and warnings, uncaught errors, and
 * requests to anything but the page's own origin (no CDN, works offline).
 */
export function watchPageProblems(page: Page, origin: () => string, problems: string[] = []): string[] {
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning")
      problems.push(`console ${message.type()}: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("request", (request) => {
    if (!request.url().startsWith(origin()) && !request.url().startsWith("data:")) {
      problems.push(`external request: ${request.url()}`);
    }
  });
  return problems;
}
