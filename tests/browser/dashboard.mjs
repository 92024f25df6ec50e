// Drives real headless Chromium through the dashboard, as a manager would.
// Run by tests/browser.rs with: BASE TOKEN BREACHED WARNING ARTIFACTS
//   BASE       the daemon's URL
//   TOKEN      a manager's API token
//   BREACHED   number of a case whose respond deadline has passed
//   WARNING    number of a case a few seconds before its first warning
//   ARTIFACTS  directory for screenshots and the downloaded CSV
// Prints one line per check; exits non-zero on the first failure.
import { chromium } from "playwright-core";
import { writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";

const [base, token, breached, warning, artifacts] = process.argv.slice(2);
const executablePath = process.env.TOCSIN_TEST_CHROMIUM || "/usr/bin/chromium";

function check(ok, what) {
  if (!ok) {
    throw new Error("FAILED: " + what);
  }
  console.log("ok: " + what);
}

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
const errors = [];
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("response", (r) => {
    if (r.status() >= 400) errors.push(r.status() + " " + r.url());
  });
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });

  // Sign in.
  await page.goto(base + "/now");
  check(page.url().includes("/login"), "an unsigned visit lands on the sign-in page");
  await page.fill("#token", token);
  await Promise.all([page.waitForURL("**/now"), page.click("button[type=submit]")]);
  check(await page.isVisible("text=Sign out"), "signed in");
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "tocsin_session");
  check(session && session.httpOnly && session.sameSite === "Strict", "the session cookie is HttpOnly and SameSite=Strict");

  // The breached case is on top, in words.
  const first = page.locator("table.cases tbody tr").first();
  check((await first.locator("a").first().textContent()).trim() === "#" + breached, "the breached case is at the top");
  check((await first.locator(".label").textContent()).trim() === "BREACHED", "it says BREACHED");
  await page.screenshot({ path: join(artifacts, "1-now.png"), fullPage: true });

  // The countdown of the other case moves from OK to WARNING by itself.
  const due = page.locator(`tr:has(a[href="/cases/${warning}"]) .due`);
  const before = (await due.locator(".label").textContent()).trim();
  check(before === "OK", "the case about to warn starts OK (was " + before + ")");
  await page.waitForFunction(
    (n) => {
      const el = document.querySelector(`tr:has(a[href="/cases/${n}"]) .due .label`);
      return el && el.textContent.trim() === "WARNING";
    },
    warning,
    { timeout: 15000 },
  );
  check(true, "the countdown changed to WARNING without a reload");
  // It ticks once a second; allow a loaded machine a few seconds to show it.
  const left1 = (await due.locator(".left").textContent()).trim();
  const ticked = await page
    .waitForFunction(
      ([n, was]) => {
        const el = document.querySelector(`tr:has(a[href="/cases/${n}"]) .due .left`);
        return el && el.textContent.trim() !== was;
      },
      [warning, left1],
      { timeout: 5000 },
    )
    .then(() => true, () => false);
  const left2 = (await due.locator(".left").textContent()).trim();
  check(ticked, "the countdown ticks (" + left1 + " then " + left2 + ")");
  await page.screenshot({ path: join(artifacts, "2-warning.png"), fullPage: true });

  // htmx refreshes the live part: the request is seen.
  const refreshed = await page.waitForResponse((r) => r.url().endsWith("/now/live") && r.status() === 200, {
    timeout: 10000,
  });
  check(!!refreshed, "the live part refreshes without a reload");

  // Acknowledge the breached case from its page.
  await page.click(`a[href="/cases/${breached}"]`);
  await page.waitForURL("**/cases/" + breached);
  await Promise.all([page.waitForURL("**/cases/" + breached), page.click("button:has-text('Acknowledge')")]);
  check((await page.textContent("dl.facts")).includes("ACKNOWLEDGED"), "acknowledged from the case page");
  check((await page.textContent("table.timeline")).includes("dashboard"), "the timeline names the dashboard");
  await page.screenshot({ path: join(artifacts, "3-case.png"), fullPage: true });

  // Reports and a CSV download.
  await page.goto(base + "/reports");
  check(await page.isVisible("svg.chart"), "the reports page draws its charts");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.click("a:has-text('Download compliance.csv')"),
  ]);
  const csvPath = join(artifacts, download.suggestedFilename());
  await download.saveAs(csvPath);
  const csv = readFileSync(csvPath, "utf8");
  check(csv.startsWith("week,by,value,opened,met,breached,pending,percent_met"), "the CSV downloads with its header");
  check(csv.includes(",priority,P1,"), "the CSV has the P1 row");
  await page.screenshot({ path: join(artifacts, "4-reports.png"), fullPage: true });

  // On a phone.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await phone.addCookies(cookies);
  const small = await phone.newPage();
  await small.goto(base + "/now");
  const width = await small.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 400, "the Now page fits a phone screen (" + width + "px wide)");
  await small.screenshot({ path: join(artifacts, "5-phone.png"), fullPage: true });

  check(errors.length === 0, "no script errors or CSP violations: " + JSON.stringify(errors));
  writeFileSync(join(artifacts, "result.txt"), "PASS\n");
} finally {
  await browser.close();
}
