// Helpers for VS Code's walkthrough page (the Welcome editor, VS Code 1.100): its DOM is not an API, so the
// selectors live here, to be checked again when code-server is upgraded.
import { SEL, runCommand } from "./workbench.mjs";

/** Selectors of the walkthrough page. */
export const WT = {
  page: ".gettingStartedContainer",
  title: ".gettingStartedSlideDetails .category-title",
};

/** A step of this extension's walkthrough, by its short id (walkthrough.ts). */
export function stepOf(page, id) {
  return page.locator(`button.getting-started-step[data-step-id$="#firstRun#${id}"]`);
}

/** True when VS Code shows the step as completed. */
export async function stepDone(page, id) {
  return (await stepOf(page, id).getAttribute("aria-checked")) === "true";
}

/** Expands a step (its buttons show only while it is expanded). */
export async function openStep(page, id) {
  const step = stepOf(page, id);
  if ((await step.getAttribute("aria-expanded")) !== "true") await step.locator(".step-title").click();
  await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute("aria-expanded") === "true", `button.getting-started-step[data-step-id$="#firstRun#${id}"]`);
}

/** Clicks the button a step's description renders from a `command:` link. */
export async function clickStepButton(page, id, label) {
  await openStep(page, id);
  await stepOf(page, id).locator(".button-container .monaco-button", { hasText: label }).click();
}

/**
 * Opens the Welcome page once and closes it. In a fresh profile the first Welcome page VS Code opens shows its own
 * first-launch walkthrough whatever it was asked for; a real user's profile is past that moment, the test's is not.
 */
export async function passFirstLaunch(page) {
  await runCommand(page, "Help: Welcome");
  await page.locator(WT.page).waitFor();
  await page.locator(".tab.active .codicon-close").click();
  await page.locator(WT.page).waitFor({ state: "detached" });
  await page.locator(SEL.workbench).click({ position: { x: 700, y: 450 } });
}
