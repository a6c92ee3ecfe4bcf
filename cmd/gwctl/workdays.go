package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/rehabgw/rehabgw/gateway/deadline"
)

func (a *app) workdaysCmd() *cobra.Command {
	var calFile string
	cmd := &cobra.Command{
		Use:   "workdays",
		Short: "Danish working-day arithmetic (hverdage), as the deadlines count them",
		Long: `Danish working days: Monday to Friday minus public holidays, minus
Grundlovsdag, 24 and 31 December (closed by default), minus the extra closed
days of --calendar FILE (YAML: grundlovsdag_closed, christmas_eve_closed,
new_years_eve_closed, closed: [{from, to, name}]). The anchor day is never
counted.`,
	}
	loadCal := func() (*deadline.Calendar, error) {
		cfg := deadline.CalendarConfig{}
		if calFile != "" {
			f, err := os.Open(calFile)
			if err != nil {
				return nil, ioErr(err)
			}
			defer f.Close()
			if cfg, err = deadline.DecodeCalendarConfig(f); err != nil {
				return nil, usageErr("%s: %v", calFile, err)
			}
		}
		c, err := deadline.NewCalendar(cfg)
		if err != nil {
			return nil, usageErr("%s: %v", calFile, err)
		}
		return c, nil
	}
	add := &cobra.Command{
		Use:   "add DATE N",
		Short: "Print the date N working days after DATE (N may be negative: before)",
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			d, err := deadline.ParseDate(args[0])
			if err != nil {
				return usageErr("%v", err)
			}
			n, err := strconv.Atoi(args[1])
			if err != nil || n < -10000 || n > 10000 {
				return usageErr("N must be a whole number between -10000 and 10000")
			}
			c, err := loadCal()
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, c.AddWorkdays(d, n).Format("2006-01-02"))
			return nil
		},
	}
	between := &cobra.Command{
		Use:   "between A B",
		Short: "Print the number of working days after A up to and including B",
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			x, err := deadline.ParseDate(args[0])
			if err != nil {
				return usageErr("%v", err)
			}
			y, err := deadline.ParseDate(args[1])
			if err != nil {
				return usageErr("%v", err)
			}
			if y.Sub(x).Hours() > 24*366*30 || x.Sub(y).Hours() > 24*366*30 {
				return usageErr("A and B are more than 30 years apart")
			}
			c, err := loadCal()
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, c.Between(x, y))
			return nil
		},
	}
	cmd.PersistentFlags().StringVar(&calFile, "calendar", "", "YAML file with the configured extra closed days")
	// N may be negative: everything after DATE is an argument, not a flag.
	add.Flags().SetInterspersed(false)
	between.Flags().SetInterspersed(false)
	cmd.AddCommand(add, between)
	return cmd
}
