import Mocha from 'mocha';

/**
 * mocha's spec output, closed by the plain line `N passed, N failed, N skipped` that CI reads
 * (mocha's own "N passing" summary is not among the closing lines it understands).
 */
class SpecWithSummary extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const s = runner.stats ?? { passes: 0, failures: 0, pending: 0 };
      // After Spec's epilogue, which is registered first and so printed first.
      process.stdout.write(`\n${s.passes} passed, ${s.failures} failed, ${s.pending} skipped\n`);
    });
  }
}

export = SpecWithSummary;
