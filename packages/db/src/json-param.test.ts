import { expect } from 'chai';
import { wellFormed } from './json-param.ts';

describe('wellFormed', () => {
  it('replaces unpaired surrogates only', () => {
    expect(wellFormed('plain "text"')).to.equal('plain "text"');
    expect(wellFormed('pair \uD83D\uDE00 kept')).to.equal('pair \uD83D\uDE00 kept');
    expect(wellFormed('high \uD800 low \uDC00 end\uD83D')).to.equal(
      'high \uFFFD low \uFFFD end\uFFFD',
    );
    expect(JSON.stringify(wellFormed('a\uDC00'))).to.equal('"a\uFFFD"');
  });
});
