import { describe, expect, test } from "vitest";
import {
  formatBpw,
  formatBytes,
  formatCount,
  formatDuration,
  formatMs,
  formatParams,
  formatPercent,
  formatRate,
  formatTokensPerSecond,
} from "./format";

describe("formatBytes", () => {
  test("binary units with three significant figures", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1536)).toBe("1.50 KiB");
    expect(formatBytes(105_454_016)).toBe("101 MiB");
    expect(formatBytes(12.34 * 2 ** 20)).toBe("12.3 MiB");
    expect(formatBytes(6_425_499_648)).toBe("5.98 GiB"); // the paper's BF16 Llama 3.2 3B
    expect(formatBytes(2_012_000_000)).toBe("1.87 GiB");
    expect(formatBytes(3 * 2 ** 40)).toBe("3.00 TiB");
  });
  test("a value that rounds to 1024 carries to the next unit", () => {
    expect(formatBytes(1024 * 1024 - 1)).toBe("1.00 MiB");
    expect(formatBytes(2 ** 30 - 2 ** 19)).toBe("1.00 GiB");
  });
  test("negative and invalid", () => {
    expect(formatBytes(-2048)).toBe("\u22122.00 KiB");
    expect(formatBytes(NaN)).toBe("—");
  });
});

test("formatRate uses decimal units", () => {
  expect(formatRate(850)).toBe("850 B/s");
  expect(formatRate(52_300_000)).toBe("52.3 MB/s");
  expect(formatRate(1_204_000_000)).toBe("1.20 GB/s");
  expect(formatRate(-1)).toBe("—");
});

test("formatPercent uses a real minus sign and a plus for growth", () => {
  expect(formatPercent(-68.66)).toBe("\u221268.7%");
  expect(formatPercent(-68.664, 2)).toBe("\u221268.66%");
  expect(formatPercent(2.5)).toBe("+2.5%");
  expect(formatPercent(-0.01)).toBe("0.0%");
});

test("formatDuration", () => {
  expect(formatDuration(0.42)).toBe("0.4 s");
  expect(formatDuration(9.96)).toBe("10 s");
  expect(formatDuration(12.4)).toBe("12 s");
  expect(formatDuration(72)).toBe("1 min 12 s");
  expect(formatDuration(120)).toBe("2 min");
  expect(formatDuration(3600 + 5 * 60 + 10)).toBe("1 h 5 min");
  expect(formatDuration(-1)).toBe("—");
});

test("formatParams as model names write them", () => {
  expect(formatParams(134_515_008)).toBe("135M");
  expect(formatParams(1_235_814_432)).toBe("1.24B");
  expect(formatParams(8_030_261_248)).toBe("8.03B");
  expect(formatParams(7_000_000_000)).toBe("7B");
  expect(formatParams(70_553_706_496)).toBe("70.6B");
  expect(formatParams(12_000)).toBe("12K");
  expect(formatParams(999)).toBe("999");
  expect(formatParams(null)).toBe("—");
});

test("small formatters", () => {
  expect(formatMs(85.4)).toBe("85 ms");
  expect(formatMs(1200)).toBe("1.20 s");
  expect(formatBpw(4.8912)).toBe("4.89");
  expect(formatTokensPerSecond(52.34)).toBe("52.3 tok/s");
  expect(formatTokensPerSecond(244.4)).toBe("244 tok/s");
  expect(formatCount(2048)).toBe("2,048");
});
