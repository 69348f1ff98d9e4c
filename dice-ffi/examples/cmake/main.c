/* Per-label Dice of two small label maps through the installed C library. */
#include <stdio.h>

#include "dice.h"

int main(void) {
  const unsigned char reference[12] = {0, 0, 1, 1, 1, 2, 2, 2, 2, 0, 0, 1};
  const unsigned char prediction[12] = {0, 1, 1, 1, 0, 2, 2, 2, 0, 0, 0, 1};
  DiceConfusion counts[3];
  DiceEmptyPolicy policy;
  double dice[3];
  unsigned char defined[3];
  if (dice_label_confusion(DICE_LABEL_TYPE_U8, prediction, reference, 12, 0, 0, counts, 3, NULL) != DICE_STATUS_OK ||
      dice_empty_policy_default(&policy) != DICE_STATUS_OK ||
      dice_metrics(counts, 3, DICE_METRIC_DICE, policy, dice, defined) != DICE_STATUS_OK) {
    fprintf(stderr, "dice: %s\n", dice_last_error_message());
    return 1;
  }
  printf("dice %s\n", dice_version());
  for (int l = 0; l < 3; l++) printf("label %d dice %.6f\n", l, dice[l]);
  return 0;
}
