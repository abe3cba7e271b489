import { Context } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { cancellationByWorkflow } from './heartbeat';

/**
 * Reports a workflow's cancellation as a cancellation, whatever error the activity ended with.
 * A cancellation that lands inside an engine call (a pgBackRest command stopped mid-way) comes
 * back wrapped as that engine's failure; reported as such, a workflow waiting for the activity
 * to acknowledge the cancel would see a failure instead, and decide its outcome wrongly.
 */
export const reportCancellationAsSuch: ActivityInterceptorsFactory = (ctx: Context) => ({
  inbound: {
    async execute(input, next) {
      try {
        return await next(input);
      } catch (err) {
        throw cancellationByWorkflow(ctx) ?? err;
      }
    },
  },
});
