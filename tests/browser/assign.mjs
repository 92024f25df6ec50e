// Drives real headless Chromium through assigning a case from the
// dashboard, as a manager would: find it on the Cases page, open it, pick
// a person, assign; then wait on the customer and resume.
// Run by tests/daemon/browser_assign.rs with: BASE TOKEN CASE ARTIFACTS
//   BASE       the daemon's URL
//   TOKEN      a manager's API token
//   CASE       number of an open case
//   ARTIFACTS  directory for screenshots
// Prints one line per check; exits non-zero on the first failure.
import { chromium } from "playwright-core";
import { join } from "node:path";

const [base, token, number, artifacts] = process.argv.slice(2);
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
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });

  await page.goto(base + "/login");
  await page.fill("#token", token);
  await Promise.all([page.waitForURL("**/now"), page.click("button[type=submit]")]);
  check(await page.isVisible("text=Sign out"), "signed in");

  // The Cases page finds it by its text and links to it.
  await page.click("nav a:has-text('Cases')");
  await page.waitForURL("**/cases");
  await page.fill("input[name=q]", "Site down");
  await Promise.all([page.waitForURL("**/cases?**"), page.click("button:has-text('Find')")]);
  const link = page.locator(`table.cases a[href="/cases/${number}"]`);
  check((await link.count()) === 1, "the Cases page finds the case");
  await Promise.all([page.waitForURL("**/cases/" + number), link.click()]);

  // Assign it to Ben.
  await page.selectOption("#assign-to", "ben");
  await page.screenshot({ path: join(artifacts, "assign-1-case.png"), fullPage: true });
  await Promise.all([page.waitForURL("**/cases/" + number), page.click("button:has-text('Assign')")]);
  const facts = await page.locator("dl.facts").textContent();
  check(facts.includes("Ben Okafor"), "the case shows Ben as its assignee");
  check(facts.toUpperCase().includes("ACKNOWLEDGED"), "the open case is acknowledged by the assignment");
  check(await page.isVisible("text=assigned to ben"), "the timeline says so");

  // Wait on the customer, then resume.
  await page.fill("#wait-why", "asked for the logs");
  await Promise.all([page.waitForURL("**/cases/" + number), page.click("button:has-text('Wait on customer')")]);
  check((await page.locator("dl.facts").textContent()).toUpperCase().includes("WAITING"), "waiting on the customer");
  await Promise.all([page.waitForURL("**/cases/" + number), page.click("button:has-text('Resume')")]);
  check((await page.locator("dl.facts").textContent()).toUpperCase().includes("ACKNOWLEDGED"), "resumed");
  await page.screenshot({ path: join(artifacts, "assign-2-done.png"), fullPage: true });
  check(errors.length === 0, "no script or console errors (" + errors.join("; ") + ")");
} finally {
  await browser.close();
}
