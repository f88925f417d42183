import { type FaultModule, FaultParamError, stringParam } from "./fault.js";

/**
 * A real scheduler freeze (#17408 eviction deadlock, #14407 reload deadlock): the scheduler stops
 * moving while the HTTP server answers. `form=generations`: every generation, for every model,
 * hangs, while /api/tags, /api/embed and (before 0.32.4, where it takes no scheduler lock) /api/ps
 * stay green. `form=loads`: loads hang, models already loaded keep answering.
 */
export const schedulerFreeze: FaultModule = {
  name: "scheduler-freeze",
  row: "F5",
  summary:
    "the scheduler is stuck: generations for every model hang (or, form=loads, every load) while /api/tags, /api/embed and /api/ps (before 0.32.4) answer",
  params: "form=generations|loads",
  persistent: false,
  activate: (spec, host) => {
    const form = stringParam(spec, "form", "generations");
    if (form !== "generations" && form !== "loads")
      throw new FaultParamError(`scheduler-freeze: form must be "generations" or "loads", got "${form}"`);
    // server/sched.go loadedModels (v0.32.4+) takes the locks the stuck scheduler holds.
    const hangsPs = host.profile.ps.takesSchedulerLocks;
    return {
      effects: form === "loads" ? { blocksLoads: true, hangsPs } : { freezesGenerations: true, hangsPs },
    };
  },
};
