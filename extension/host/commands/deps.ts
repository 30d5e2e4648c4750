/**
 * What commands get from each other, passed in rather than imported: the panel opener (whose prune button runs
 * the prune flow) and the profile command (which the prune command offers to run when no profile exists).
 */
import type { PanelOpener } from "./panelOpener";

/** Options of a profile run started by another command. */
export interface ProfileRequest {
  adapter: string;
  /** Open the new profile in the panel (default true). */
  open?: boolean;
}

/** The collaborators of the command handlers. */
export interface CommandDeps {
  panels: PanelOpener;
  /** Runs the profile command; resolves to the profile file written. */
  profile(request: ProfileRequest): Promise<string>;
}
