// The long names of the fake backend's `longNames` option, shared by the fake and the layout tests.

/** 120 characters without a space: a community fine-tune's file name, which nothing can wrap. */
export const LONG_NAME =
  "SmolLM2-135M-Instruct-community-fine-tune-merged-with-a-very-long-adapter-name-and-requantized-by-someone-Q4_K_M-v2.0.11";
export const LONG_MODEL_ID = `/home/user/Downloads/${LONG_NAME}.gguf`;
export const LONG_TITLE =
  "Summarise the attached quarterly report on regional sales, staffing, logistics and the supplier contracts that expire next year";
export const LONG_CONVERSATION_ID = "00000000-0000-4000-8000-000000000001";
