// `npm run infra -- up|down|status`: the test infrastructure by hand. `up` leaves the services
// running (the test run then reuses them); `down` stops them.
import { down, forgetState, runningState, STATE_FILE, saveState, up } from "./up.ts";

const usage = "usage: npm run infra -- up | down | status   (KUSTODIA_INFRA_ONLY=kube,openbao,... to pick services)";

async function main(command: string | undefined): Promise<number> {
  switch (command) {
    case "up": {
      const existing = runningState();
      if (existing) {
        console.log(`already running (state: ${STATE_FILE})`);
        return 0;
      }
      const state = await up();
      saveState(state);
      console.log(JSON.stringify({ coordinates: state.coordinates, unavailable: state.unavailable, timingsMs: state.timingsMs }, null, 2));
      console.log(`state: ${STATE_FILE}`);
      return Object.keys(state.unavailable).length === 0 ? 0 : 1;
    }
    case "down": {
      const state = runningState();
      if (state) await down(state);
      forgetState();
      console.log(state ? "stopped" : "nothing running");
      return 0;
    }
    case "status": {
      const state = runningState();
      console.log(state ? JSON.stringify(state, null, 2) : "nothing running");
      return 0;
    }
    default:
      console.error(usage);
      return 2;
  }
}

process.exitCode = await main(process.argv[2]);
