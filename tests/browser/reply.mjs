// Replies to a customer from the dashboard's case page in real headless
// Chromium, as an engineer would (issue 14). Run by tests/daemon/replies_e2e.rs
// with: BASE TOKEN CASE TEXT ARTIFACTS
// Prints one line per check; exits non-zero on the first failure.
import { chromium } from "playwright-core";
import { join } from "node:path";

const [base, token, number, text, artifacts] = process.argv.slice(2);
const executablePath = process.env.TOCSIN_TEST_CHROMIUM || "/usr/bin/chromium";

function check(ok, what) {
  if (!ok) {
    throw new Error("FAILED: " + what);
  }
  console.log("ok: " + what);
}

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
try {
  const page = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  await page.goto(base + "/login");
  await page.fill("#token", token);
  await Promise.all([page.waitForURL("**/now"), page.click("button[type=submit]")]);
  await page.goto(base + "/cases/" + number);
  const reply = page.locator("form.reply");
  check(await reply.isVisible(), "the case page has a reply form");
  check((await reply.locator("label").textContent()).includes("Reply to customer"), "labelled Reply to customer");
  const note = page.locator("form.note:not(.reply) label").first();
  check((await note.textContent()).includes("internal note"), "the update form says it stays internal");
  await page.fill("#reply", text);
  await Promise.all([page.waitForURL("**/cases/" + number), reply.locator("button[type=submit]").click()]);
  check(await page.isVisible("text=" + text), "the reply is on the timeline");
  await page.screenshot({ path: join(artifacts, "reply-case.png"), fullPage: true });
} finally {
  await browser.close();
}
